package accounts_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agora-commerce/agora/internal/auth"
	"github.com/agora-commerce/agora/internal/testdb"
	"github.com/agora-commerce/agora/modules/identity"
	"github.com/agora-commerce/agora/modules/identity/internal/accounts"
)

// follower is what a verifying process does with the feed, in a test's hands.
type follower struct {
	keys   *auth.Keys
	cursor int64
}

func (fl *follower) catchUp(t *testing.T, f fixture) identity.RevocationFeed {
	t.Helper()
	feed, err := f.s.WatchRevocations(t.Context(), identity.WatchRevocations{After: fl.cursor})
	if err != nil {
		t.Fatalf("WatchRevocations: %v", err)
	}
	for _, r := range feed.Items {
		fl.keys.Revoke(r.UserID, r.MinVersion, r.Until)
	}
	fl.cursor = feed.Cursor
	return feed
}

// Every way identity revokes a user's access tokens reaches a verifying process
// through the feed, publishes TokensRevoked, and leaves the user's next token good.
func TestRevocationsReachTheFeed(t *testing.T) {
	cases := []struct {
		reason string
		revoke func(t *testing.T, f fixture, u identity.User, tok identity.Tokens) string // returns the new password
	}{
		{accounts.ReasonLogout, func(t *testing.T, f fixture, _ identity.User, tok identity.Tokens) string {
			if _, err := f.s.Logout(t.Context(), identity.Logout{RefreshToken: tok.RefreshToken}); err != nil {
				t.Fatal(err)
			}
			return pw
		}},
		{accounts.ReasonPasswordChanged, func(t *testing.T, f fixture, u identity.User, _ identity.Tokens) string {
			const next = "an entirely new passphrase"
			if _, err := f.s.ChangePassword(t.Context(), identity.ChangePassword{UserID: u.ID, CurrentPassword: pw, NewPassword: next}); err != nil {
				t.Fatal(err)
			}
			return next
		}},
		{accounts.ReasonRoleChanged, func(t *testing.T, f fixture, u identity.User, _ identity.Tokens) string {
			if _, err := f.s.SetRole(t.Context(), identity.SetRole{ID: u.ID, Role: identity.RoleAdmin, ExpectedVersion: u.Version}); err != nil {
				t.Fatal(err)
			}
			return pw
		}},
		{accounts.ReasonRefreshReused, func(t *testing.T, f fixture, _ identity.User, tok identity.Tokens) string {
			f.refresh(t, tok.RefreshToken)
			f.wantRefreshFails(t, "a spent token", tok.RefreshToken)
			return pw
		}},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			eachService(t, func(t *testing.T, f fixture) {
				u := f.register(t, "alice@example.com", pw)
				bystander := f.register(t, "bob@example.com", pw)
				tok := f.login(t, u.Email, pw)
				other := f.login(t, bystander.Email, pw)
				fl := &follower{keys: f.keys}
				if feed := fl.catchUp(t, f); len(feed.Items) != 0 {
					t.Fatalf("feed before any revocation: %+v", feed)
				}
				password := tc.revoke(t, f, u, tok)

				feed := fl.catchUp(t, f)
				if len(feed.Items) != 1 || feed.Items[0].UserID != u.ID {
					t.Fatalf("feed after the revocation: %+v", feed)
				}
				if _, err := f.keys.Verify(tok.AccessToken); !errors.Is(err, auth.ErrInvalid) {
					t.Errorf("the revoked access token verified: %v", err)
				}
				if _, err := f.keys.Verify(other.AccessToken); err != nil {
					t.Errorf("another user's token: %v", err)
				}
				if _, err := f.keys.Verify(f.login(t, u.Email, password).AccessToken); err != nil {
					t.Errorf("a token issued after the revocation: %v", err)
				}
				var revoked []identity.TokensRevoked
				for _, row := range testdb.OutboxRows(t, f.h.DB) {
					if row.Type == identity.TokensRevokedEvent.Name() {
						revoked = append(revoked, testdb.Decode[identity.TokensRevoked](t, row.Payload))
					}
				}
				if len(revoked) != 1 || revoked[0].UserID != u.ID || revoked[0].Reason != tc.reason {
					t.Errorf("TokensRevoked in the outbox: %+v, want one for %s because %s", revoked, u.ID, tc.reason)
				}
			})
		})
	}
}

// A waiting WatchRevocations answers as soon as a revocation commits, not at the
// end of its wait; with nothing to report it answers at the end of its wait.
func TestWatchRevocationsWakesOnCommit(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		u := f.register(t, "alice@example.com", pw)
		tok := f.login(t, u.Email, pw)
		start, err := f.s.WatchRevocations(t.Context(), identity.WatchRevocations{})
		if err != nil {
			t.Fatal(err)
		}
		empty, err := f.s.WatchRevocations(t.Context(), identity.WatchRevocations{After: start.Cursor, Wait: 50 * time.Millisecond})
		if err != nil || len(empty.Items) != 0 || empty.Cursor != start.Cursor {
			t.Fatalf("an idle feed answered %+v, %v", empty, err)
		}
		got := make(chan identity.RevocationFeed, 1)
		go func() {
			feed, _ := f.s.WatchRevocations(t.Context(), identity.WatchRevocations{After: start.Cursor, Wait: time.Minute})
			got <- feed
		}()
		time.Sleep(100 * time.Millisecond) // let it wait
		if _, err := f.s.Logout(t.Context(), identity.Logout{RefreshToken: tok.RefreshToken}); err != nil {
			t.Fatal(err)
		}
		select {
		case feed := <-got:
			if len(feed.Items) != 1 || feed.Cursor <= start.Cursor {
				t.Errorf("woken feed %+v", feed)
			}
		case <-time.After(20 * time.Second): // far below the minute it would wait unwoken
			t.Fatal("the waiting WatchRevocations was not woken by the revocation")
		}
	})
}

// Concurrent revocations all reach a follower that reads between them: the feed's
// order is commit order, so a cursor never skips one that committed late.
func TestFeedMissesNoConcurrentRevocation(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		const n = 12
		var users []identity.User
		var toks []identity.Tokens
		for i := range n {
			u := f.register(t, fmt.Sprintf("u%d@example.com", i), pw)
			users, toks = append(users, u), append(toks, f.login(t, u.Email, pw))
		}
		fl := &follower{keys: f.keys}
		fl.catchUp(t, f)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if _, err := f.s.Logout(t.Context(), identity.Logout{RefreshToken: toks[i].RefreshToken}); err != nil {
					t.Error(err)
				}
			})
			if i%3 == 0 {
				fl.catchUp(t, f) // read while others commit
			}
		}
		wg.Wait()
		fl.catchUp(t, f)
		for i := range n {
			if _, err := f.keys.Verify(toks[i].AccessToken); !errors.Is(err, auth.ErrInvalid) {
				t.Errorf("user %d's revoked token verified: %v", i, err)
			}
		}
	})
}

func TestPurgeRevocations(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		u := f.register(t, "alice@example.com", pw)
		if _, err := f.s.Logout(t.Context(), identity.Logout{RefreshToken: f.login(t, u.Email, pw).RefreshToken}); err != nil {
			t.Fatal(err)
		}
		if n, err := f.s.PurgeRevocations(t.Context()); err != nil || n != 0 {
			t.Fatalf("purge of a live revocation: %d, %v", n, err)
		}
		f.clock.Advance(accounts.AccessTTL + time.Minute)
		if n, err := f.s.PurgeRevocations(t.Context()); err != nil || n != 1 {
			t.Errorf("purge after the last token expired: %d, %v; want 1", n, err)
		}
	})
}

// Refreshes and logouts of one family at once (both tokens of it, the spent and
// the current) all end in an answer the contract names — never a deadlock, which
// PostgreSQL answers with an error when two of them lock the family's rows in
// opposite orders — and leave the family revoked.
func TestRefreshAndLogoutRace(t *testing.T) {
	eachService(t, func(t *testing.T, f fixture) {
		u := f.register(t, "alice@example.com", pw)
		for round := range 5 {
			spent := f.login(t, u.Email, pw)
			current := f.refresh(t, spent.RefreshToken)
			const n = 6 // within the pool (8, one holding the lock), so every one reaches the lock
			errs := make([]error, n)
			race(t, f.h, "users", "id", u.ID, n, func(i int) {
				tok := []string{spent.RefreshToken, current.RefreshToken}[i%2]
				if i%4 < 2 {
					_, errs[i] = f.s.Refresh(t.Context(), identity.Refresh{RefreshToken: tok})
				} else {
					_, errs[i] = f.s.Logout(t.Context(), identity.Logout{RefreshToken: tok})
				}
			})
			for i, err := range errs {
				if err != nil && !errors.Is(err, identity.ErrInvalidToken) {
					t.Errorf("round %d, request %d: %v", round, i, err)
				}
			}
			f.wantRefreshFails(t, "the family's current token", current.RefreshToken)
		}
	})
}
