package bus

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/agora-commerce/agora/internal/message"
)

func init() {
	// Ids are identifiers, never secrets (tokens use crypto/rand directly), so they
	// may come from uuid's buffered randomness instead of one getrandom call each:
	// every HTTP request and message takes at least one. It must be enabled before
	// any id is made, hence init.
	uuid.EnableRandPool()
}

// NewID returns a new UUIDv7, time-ordered so that ids sort by creation.
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// NewEnvelope builds an envelope for a message of the given type and kind, encoding
// payload as JSON and taking causation and correlation from ctx.
func NewEnvelope(ctx context.Context, kind message.Kind, typ string, payload any) (message.Envelope, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return message.Envelope{}, err
	}
	env := message.Envelope{ID: NewID(), Type: typ, Kind: kind, Time: time.Now().UTC(), Payload: body}
	if c, ok := message.CauseFrom(ctx); ok {
		env.CausationID = c.ID
		env.CorrelationID = c.CorrelationID
	}
	if env.CorrelationID == "" {
		env.CorrelationID = env.ID
	}
	injectTrace(ctx, &env)
	return env, nil
}
