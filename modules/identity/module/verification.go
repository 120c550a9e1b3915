package module

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.uber.org/fx"

	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/backoff"
	"github.com/agora-commerce/agora/internal/bus"
	"github.com/agora-commerce/agora/internal/config"
	"github.com/agora-commerce/agora/modules/identity"
	"github.com/agora-commerce/agora/modules/identity/internal/signing"
)

// How a process follows identity.
const (
	// feedWait is how long one WatchRevocations waits for a revocation.
	feedWait = 20 * time.Second
	// keyRefresh is how often a process fetches the key set again, to drop keys
	// identity no longer publishes (new keys are fetched when a token names one).
	keyRefresh = 5 * time.Minute
	// catchUpWait bounds the first read of the feed, while the process starts.
	catchUpWait = 2 * time.Second
)

// Verification gives every process — whatever modules it runs — the *auth.Keys
// its HTTP edge verifies access tokens with, and keeps them current: the key set
// comes from identity over the bus (or from the key files, when given), and every
// revocation identity makes reaches the keys through its revocation feed, which
// the process follows for as long as it runs. Until the feed has been read once,
// the keys answer auth.ErrUnavailable (503), never a verdict they cannot know.
func Verification(s Settings) fx.Option {
	return fx.Options(
		fx.Provide(func() (*auth.Keys, error) {
			return auth.Load(s.JWTPrivateKeyFile, s.JWTPublicKeyFile)
		}),
		fx.Invoke(func(lc fx.Lifecycle, cfg config.Config, keys *auth.Keys, b *bus.Bus, log *slog.Logger) {
			follow(lc, cfg.Runs("identity"), s, keys, b, log)
		}),
	)
}

// follower keeps a process's keys current.
type follower struct {
	keys *auth.Keys
	bus  *bus.Bus
	log  *slog.Logger
}

func follow(lc fx.Lifecycle, identityHere bool, s Settings, keys *auth.Keys, b *bus.Bus, log *slog.Logger) {
	f := &follower{keys: keys, bus: b, log: log}
	fetchKeys := !identityHere && s.JWTPrivateKeyFile == "" && s.JWTPublicKeyFile == ""
	if fetchKeys {
		keys.SetSource(f.fetchKeys)
	}
	keys.AwaitRevocations()
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	lc.Append(fx.Hook{
		OnStart: func(start context.Context) error {
			if fetchKeys {
				running.Go(func() { f.refreshKeys(ctx) })
			}
			// A first read before the process serves, so that it is ready to
			// verify at once when identity is reachable; if not, the follower retries.
			cursor := f.catchUp(start)
			running.Go(func() { f.followRevocations(ctx, cursor) })
			return nil
		},
		OnStop: func(stop context.Context) error {
			cancel()
			done := make(chan struct{})
			go func() { running.Wait(); close(done) }()
			select {
			case <-done:
				return nil
			case <-stop.Done():
				return stop.Err()
			}
		},
	})
}

// fetchKeys asks identity for its key set.
func (f *follower) fetchKeys(ctx context.Context) ([]auth.PublicKey, error) {
	set, err := bus.Call(ctx, f.bus, identity.GetKeysRequest, identity.GetKeys{})
	if err != nil {
		return nil, err
	}
	return signing.FromJWKS(set)
}

// refreshKeys fetches the key set at once (retrying until identity answers), then
// every keyRefresh.
func (f *follower) refreshKeys(ctx context.Context) {
	for failures := 0; ctx.Err() == nil; {
		wait := keyRefresh
		if err := f.keys.Refresh(ctx); err != nil {
			failures++
			wait = backoff.Delay(100*time.Millisecond, 5*time.Second, failures)
			if failures == 1 || failures%20 == 0 {
				f.log.Warn("cannot fetch identity's verification keys yet; access tokens are answered 503 until then", "err", err)
			}
		} else {
			failures = 0
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// followRevocations reads identity's revocation feed from its start (every
// revocation still in effect) and then waits on it, applying each revocation to
// the keys, until ctx ends.
func (f *follower) followRevocations(ctx context.Context, cursor int64) {
	for failures := 0; ctx.Err() == nil; {
		wait := feedWait
		if cursor < 0 {
			wait = 0 // not caught up yet: answer at once
		}
		cctx, cancel := context.WithTimeout(ctx, feedWait+10*time.Second)
		feed, err := bus.Call(cctx, f.bus, identity.WatchRevocationsRequest, identity.WatchRevocations{After: max(cursor, 0), Wait: wait})
		cancel()
		if err != nil {
			failures++
			if ctx.Err() == nil && (failures == 1 || failures%20 == 0) {
				f.log.Warn("cannot follow identity's revocations; retrying", "err", err, "failures", failures)
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff.Delay(100*time.Millisecond, 5*time.Second, failures)):
			}
			continue
		}
		failures = 0
		cursor = f.apply(feed)
	}
}

// catchUp reads the revocations in effect now, within catchUpWait, and returns
// the cursor to follow from; -1 when identity did not answer in time.
func (f *follower) catchUp(ctx context.Context) int64 {
	ctx, cancel := context.WithTimeout(ctx, catchUpWait)
	defer cancel()
	feed, err := bus.Call(ctx, f.bus, identity.WatchRevocationsRequest, identity.WatchRevocations{})
	if err != nil {
		return -1
	}
	return f.apply(feed)
}

// apply gives the keys a page of the feed and returns the cursor after it.
func (f *follower) apply(feed identity.RevocationFeed) int64 {
	for _, r := range feed.Items {
		f.keys.Revoke(r.UserID, r.MinVersion, r.Until)
	}
	f.keys.RevocationsCurrent()
	return feed.Cursor
}
