package accounts

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/store"
	"github.com/agora-commerce/agora/modules/identity"
)

// Why a user's access tokens were revoked (identity.TokensRevoked.Reason).
const (
	ReasonLogout          = "logout"
	ReasonPasswordChanged = "password_changed"
	ReasonRoleChanged     = "role_changed"
	ReasonRefreshReused   = "refresh_token_reused"
)

// Bounds of the revocation feed.
const (
	// maxFeedWait bounds how long one WatchRevocations waits for a revocation.
	maxFeedWait = 25 * time.Second
	// feedRepoll is how often a waiting WatchRevocations looks at the database on
	// its own: a safety net. Revocations committed here wake it at once, and so do
	// those another identity replica commits to the same PostgreSQL database
	// (ListenRevocations); the poll covers a notification lost while the listener
	// reconnected.
	feedRepoll = 5 * time.Second
	// revocationTopic is the notification a committed revocation sends.
	revocationTopic = "revocations"
	// maxFeedPage bounds the revocations in one answer.
	maxFeedPage = 1000
)

// revokeAccess raises userID's token version, in tx: from the commit on, every
// access token the user holds is refused by every process (within the feed's
// delay), and tokens issued later carry the new version. It adds the revocation to
// the feed and publishes TokensRevoked.
func (s *Service) revokeAccess(ctx context.Context, tx *store.Tx, userID, reason string) error {
	var version, seq int64
	err := sqlx.GetContext(ctx, tx, &version, tx.Rebind(
		`UPDATE users SET token_version = token_version + 1 WHERE id = ? RETURNING token_version`), userID)
	if err != nil {
		return fmt.Errorf("identity: raise the token version of %s: %w", userID, err)
	}
	// Locks the counter's row until commit: seq order is commit order (see the migration).
	if err := sqlx.GetContext(ctx, tx, &seq, `UPDATE revocation_seq SET last = last + 1 WHERE id = 1 RETURNING last`); err != nil {
		return fmt.Errorf("identity: number a revocation: %w", err)
	}
	until := s.now().Add(AccessTTL + auth.Leeway)
	_, err = tx.ExecContext(ctx, tx.Rebind(`INSERT INTO token_revocations (seq, user_id, min_version, until_us)
		VALUES (?, ?, ?, ?)`), seq, userID, version, until.UnixMicro())
	if err != nil {
		return fmt.Errorf("identity: record a revocation: %w", err)
	}
	tx.OnCommit(s.revoked.notify)
	if err := tx.Notify(ctx, revocationTopic); err != nil { // the other replicas' feeds
		return err
	}
	return s.outbox.Add(ctx, tx, identity.TokensRevokedEvent.With(identity.TokensRevoked{
		UserID: userID, MinVersion: version, Reason: reason}))
}

// lockUser locks the account's row until tx ends (a write that changes nothing:
// portable, where SELECT … FOR UPDATE is not).
func (Repo) lockUser(ctx context.Context, q sqlx.ExtContext, userID string) error {
	if _, err := q.ExecContext(ctx, q.Rebind(`UPDATE users SET token_version = token_version WHERE id = ?`), userID); err != nil {
		return fmt.Errorf("identity: lock account %s: %w", userID, err)
	}
	return nil
}

// tokenVersion returns the token version access tokens of userID are issued at.
func (Repo) tokenVersion(ctx context.Context, q sqlx.ExtContext, userID string) (int64, error) {
	var v int64
	if err := sqlx.GetContext(ctx, q, &v, q.Rebind(`SELECT token_version FROM users WHERE id = ?`), userID); err != nil {
		return 0, fmt.Errorf("identity: token version of %s: %w", userID, err)
	}
	return v, nil
}

// WatchRevocations answers identity.WatchRevocations: the revocations after the
// cursor w.After that are still in effect, as soon as there is one, or none once
// w.Wait (at most 25 s) has passed.
func (s *Service) WatchRevocations(ctx context.Context, w identity.WatchRevocations) (identity.RevocationFeed, error) {
	deadline := time.Now().Add(min(max(w.Wait, 0), maxFeedWait))
	for {
		changed := s.revoked.wait() // before reading, so a commit in between wakes us
		feed, err := s.revocationsAfter(ctx, w.After)
		left := time.Until(deadline)
		if err != nil || len(feed.Items) > 0 || left <= 0 {
			return feed, err
		}
		select {
		case <-changed:
		case <-time.After(min(left, feedRepoll)):
		case <-ctx.Done():
			return feed, nil
		}
	}
}

// ListenRevocations wakes this process's waiting WatchRevocations whenever another
// process commits a revocation to the same database, until ctx ends (see
// store.DB.Listen; on SQLite there is no other process, and it only waits).
func (s *Service) ListenRevocations(ctx context.Context, log *slog.Logger) {
	s.db.Listen(ctx, revocationTopic, s.revoked.notify, log)
}

// revocationsAfter reads one page of the feed after the cursor.
func (s *Service) revocationsAfter(ctx context.Context, after int64) (identity.RevocationFeed, error) {
	var last int64
	// Every seq up to last has committed (the counter's row is locked until commit).
	if err := sqlx.GetContext(ctx, s.db, &last, `SELECT last FROM revocation_seq WHERE id = 1`); err != nil {
		return identity.RevocationFeed{}, fmt.Errorf("identity: read the revocation counter: %w", err)
	}
	if last <= after {
		// Nothing new: the common answer of a waiting feed, with one read.
		return identity.RevocationFeed{Items: []identity.Revocation{}, Cursor: last}, nil
	}
	var rows []struct {
		Seq        int64  `db:"seq"`
		UserID     string `db:"user_id"`
		MinVersion int64  `db:"min_version"`
		UntilUS    int64  `db:"until_us"`
	}
	err := sqlx.SelectContext(ctx, s.db, &rows, s.db.Rebind(`SELECT seq, user_id, min_version, until_us
		FROM token_revocations WHERE seq > ? AND seq <= ? AND until_us > ? ORDER BY seq LIMIT ?`),
		after, last, s.now().UnixMicro(), maxFeedPage)
	if err != nil {
		return identity.RevocationFeed{}, fmt.Errorf("identity: read revocations: %w", err)
	}
	feed := identity.RevocationFeed{Items: make([]identity.Revocation, 0, len(rows)), Cursor: last}
	for _, r := range rows {
		feed.Items = append(feed.Items, identity.Revocation{UserID: r.UserID, MinVersion: r.MinVersion,
			Until: time.UnixMicro(r.UntilUS).UTC()})
	}
	if len(rows) == maxFeedPage {
		feed.Cursor = rows[len(rows)-1].Seq // more to come
	}
	return feed, nil
}

// PurgeRevocations deletes revocations that no token needs any more.
func (s *Service) PurgeRevocations(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM token_revocations WHERE until_us < ?`), s.now().UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("identity: purge revocations: %w", err)
	}
	return res.RowsAffected()
}

// signal wakes every waiter when something changed.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel that is closed at the next notify.
func (g *signal) wait() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ch == nil {
		g.ch = make(chan struct{})
	}
	return g.ch
}

func (g *signal) notify() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ch != nil {
		close(g.ch)
		g.ch = nil
	}
}
