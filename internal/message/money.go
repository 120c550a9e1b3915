package message

// Money is an amount in a currency's minor units (cents for EUR) and its ISO 4217
// code: the one representation of an amount that every contract shares. Contracts
// alias it (catalog.Money, orders.Money, payments.Money), so that an amount means
// the same on every message and in the HTTP API's one Money schema.
type Money struct {
	Amount   int64  `json:"amount" minimum:"0" maximum:"100000000000" doc:"amount in minor units (e.g. cents)"`
	Currency string `json:"currency" pattern:"^[A-Z]{3}$" example:"EUR" doc:"ISO 4217 currency code"`
}
