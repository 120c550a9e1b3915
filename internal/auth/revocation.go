package auth

import (
	"sync"
	"time"
)

// MaxRevocations bounds the revocations a process remembers. Each is needed only
// until the last token it refuses has expired (one access-token lifetime); should
// more than this many arrive within that time, the process refuses every token
// issued before the overflow instead (safe: clients refresh), and forgets them.
const MaxRevocations = 100_000

// revocations is what a process knows of revoked tokens: per subject, the lowest
// token version still accepted, until every older token has expired.
type revocations struct {
	mu        sync.RWMutex
	bySubject map[string]revocation
	swept     time.Time

	// After an overflow: tokens issued before cutoff are refused until cutoffEnds.
	cutoff, cutoffEnds time.Time
}

type revocation struct {
	minVersion int64
	until      time.Time
}

// Revoke makes k refuse the tokens of userID whose version is below minVersion,
// until until (when the last of them has expired). Revocations only ever tighten:
// a lower minVersion than one known is ignored. It is idempotent.
func (k *Keys) Revoke(userID string, minVersion int64, until time.Time) {
	k.revoked.add(userID, minVersion, until, time.Now())
}

// AwaitRevocations makes Verify answer ErrUnavailable until RevocationsCurrent is
// called: a process that follows identity's revocations accepts no token before
// it knows which were revoked.
func (k *Keys) AwaitRevocations() { k.awaiting.Store(true) }

// RevocationsCurrent tells k that it has learned every revocation in effect.
func (k *Keys) RevocationsCurrent() { k.awaiting.Store(false) }

// Revocations returns how many subjects' revocations k holds now.
func (k *Keys) Revocations() int {
	k.revoked.mu.RLock()
	defer k.revoked.mu.RUnlock()
	return len(k.revoked.bySubject)
}

func (r *revocations) add(userID string, minVersion int64, until, now time.Time) {
	if !until.After(now) {
		return // every token it would refuse has expired
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bySubject == nil {
		r.bySubject = map[string]revocation{}
	}
	if now.Sub(r.swept) > time.Minute {
		for id, e := range r.bySubject {
			if !e.until.After(now) {
				delete(r.bySubject, id)
			}
		}
		r.swept = now
	}
	e, ok := r.bySubject[userID]
	if ok && e.minVersion >= minVersion {
		e.until = later(e.until, until)
		r.bySubject[userID] = e
		return
	}
	if !ok && len(r.bySubject) >= MaxRevocations {
		r.overflow(until, now)
		return
	}
	r.bySubject[userID] = revocation{minVersion: minVersion, until: later(e.until, until)}
}

// overflow replaces every remembered revocation by one cutoff: tokens issued
// before now are refused until the last revocation would have ended.
func (r *revocations) overflow(until, now time.Time) {
	ends := until
	for _, e := range r.bySubject {
		ends = later(ends, e.until)
	}
	r.cutoff, r.cutoffEnds = now, later(r.cutoffEnds, ends)
	r.bySubject = map[string]revocation{}
}

// refuses reports whether a token of userID at version, issued at issuedAt, is
// revoked at now. Token times have whole seconds, so the cutoff compares seconds.
func (r *revocations) refuses(userID string, version int64, issuedAt, now time.Time) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if now.Before(r.cutoffEnds) && issuedAt.Before(r.cutoff.Truncate(time.Second)) {
		return true
	}
	e, ok := r.bySubject[userID]
	return ok && now.Before(e.until) && version < e.minVersion
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
