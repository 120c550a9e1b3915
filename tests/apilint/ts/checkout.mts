// A whole checkout through a client generated from Agora's OpenAPI document
// (openapi-typescript + openapi-fetch), as a TypeScript user would write it: no
// casts, no `any`, compiled with `tsc --strict`. tests/apilint's
// TestTypeScriptClient generates ./schema.d.ts from the document the binary
// serves, compiles this file and runs it with node against that binary, whose
// address is in AGORA_BASE.
//
// The type-level checks below fail to compile when an operation's errors are
// not the problem schema — for instance `never`, which is what a client gets
// for an operation that declares no error at all.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

// The problem schema (RFC 9457) every error answer carries. Its name in the
// document's components; if the document renames it, rename it here.
type Problem = components["schemas"]["Problem"];

// Equal is true only when A and B are the same type (not merely assignable);
// Expect<false> does not compile.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

const base = process.env["AGORA_BASE"];
if (!base) {
  throw new Error("AGORA_BASE is not set");
}

function fail(step: string, status: number, problem: Problem | undefined): never {
  throw new Error(`${step}: HTTP ${status}: ${problem?.title ?? "no problem body"}: ${problem?.detail ?? ""}`);
}

const anonymous = createClient<paths>({ baseUrl: base });

// Sign in as the demo customer.
const login = await anonymous.POST("/v1/auth/login", {
  body: { email: "customer@example.com", password: "demo-customer-password" },
});
if (!login.data) {
  fail("sign in", login.response.status, login.error);
}
const client = createClient<paths>({
  baseUrl: base,
  headers: { Authorization: `Bearer ${login.data.access_token}` },
});

// Browse: the first product in stock.
const page = await client.GET("/v1/products", { params: { query: { limit: 50 } } });
if (!page.data) {
  fail("list products", page.response.status, page.error);
}
const item = page.data.items.find((p) => p.status === "active" && (p.availability?.available ?? 0) > 0);
if (!item) {
  throw new Error(`no active product in stock among ${page.data.items.length}`);
}

// One product, by id: its errors are problems.
const product = await client.GET("/v1/products/{id}", { params: { path: { id: item.id } } });
type _productError = Expect<Equal<NonNullable<typeof product.error>, Problem>>;
if (!product.data) {
  fail("get product", product.response.status, product.error);
}
console.log(`product ${product.data.sku}: ${product.data.name}, ${product.data.price.amount} ${product.data.price.currency}`);

// Into the cart.
const cart = await client.PUT("/v1/cart/items/{product_id}", {
  params: { path: { product_id: product.data.id } },
  body: { quantity: 1 },
});
if (!cart.data) {
  fail("add to cart", cart.response.status, cart.error);
}
// A cart has a total once it holds a product (an empty one has no currency yet).
const total = cart.data.total;
if (!total) {
  throw new Error("add to cart: the cart holds a product but has no total");
}
console.log(`cart: ${cart.data.lines.length} line(s), total ${total.amount} ${total.currency}`);

// Check out, once: a retry with the same key answers the same order.
const placed = await client.POST("/v1/orders", {
  params: { header: { "Idempotency-Key": `ts-client-${Date.now()}-${Math.random()}` } },
  body: { payment_token: "tok_visa" },
});
type _orderError = Expect<Equal<NonNullable<typeof placed.error>, Problem>>;
if (!placed.data) {
  fail("place order", placed.response.status, placed.error);
}
const orderID = placed.data.id;
console.log(`order ${orderID}: ${placed.data.status}`);

// Poll the order until the saga has decided.
const deadline = Date.now() + 30_000;
for (;;) {
  const order = await client.GET("/v1/orders/{id}", { params: { path: { id: orderID } } });
  type _getOrderError = Expect<Equal<NonNullable<typeof order.error>, Problem>>;
  if (!order.data) {
    fail("get order", order.response.status, order.error);
  }
  if (order.data.status !== "pending") {
    if (order.data.status !== "confirmed") {
      throw new Error(`order ${orderID} ended ${order.data.status}, want confirmed`);
    }
    console.log(`order ${orderID}: confirmed, total ${order.data.total.amount} ${order.data.total.currency}`);
    break;
  }
  if (Date.now() > deadline) {
    throw new Error(`order ${orderID} still pending after 30 s`);
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
}
