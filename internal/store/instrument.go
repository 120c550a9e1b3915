package store

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

const tracerName = "github.com/agora-commerce/agora/internal/store"

// traceTx starts a span for a transaction on db when the work under ctx is
// traced (its span records); otherwise it costs one context lookup. Transactions
// outside traced work (relay polls, sweeps) are not traced: they would only be
// noise. The span covers the wait for SQLite's write lock, which is where a slow
// transaction usually spends its time.
func traceTx(ctx context.Context, db *DB) (context.Context, func(*error)) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, func(*error) {}
	}
	ctx, span := parent.TracerProvider().Tracer(tracerName).Start(ctx, "db.tx "+db.Module,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", dbSystem(db.Dialect)),
			attribute.String("db.namespace", db.Module), attribute.String("agora.module", db.Module)))
	return ctx, func(err *error) {
		if *err != nil {
			span.RecordError(*err)
			span.SetStatus(codes.Error, "transaction failed")
		}
		span.End()
	}
}

func dbSystem(d Dialect) string {
	if d == Postgres {
		return "postgresql"
	}
	return "sqlite"
}
