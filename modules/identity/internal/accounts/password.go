package accounts

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

// The argon2id parameters of new password hashes.
//
// How they were chosen: OWASP's argon2id minimum is m=19456 KiB, t=2, p=1. We
// measured on a 2-core server (AMD EPYC, 2 vCPUs, GOMAXPROCS=2) with
// BenchmarkHashPassword: these parameters take 35-38 ms a hash (five runs; up to
// 52 ms on a busier machine) and 32 MiB, against 28 ms for the OWASP minimum and
// 90-100 ms for m=64 MiB, t=2. That is inside the 20-60 ms a login may spend on
// hashing, with 1.7 times the minimum's memory. One lane (p=1): two lanes gained
// almost nothing with x/crypto's argon2 on two cores (24-27 ms against 28 ms at
// the minimum's memory), and one lane per hash lets the two cores serve two
// logins at once.
//
// Changing them is safe: stored hashes keep their own parameters, and a login
// rehashes a password whose hash has other ones (needsRehash). dummyHash must be
// regenerated with the new ones (TestDummyHashHasCurrentParameters says so).
const (
	argonMemoryKiB = 32 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonSaltLen   = 16
	argonKeyLen    = 32
)

// Limits on the parameters of a stored hash we accept to verify, so that a
// corrupt row cannot make a login allocate gigabytes or run for minutes.
const (
	maxMemoryKiB = 1024 * 1024
	maxTime      = 64
)

// dummyHash is an argon2id hash with the current parameters of a random password
// nobody knows. Login verifies against it when the email has no account, so a
// failed login costs one hash whether or not the account exists.
const dummyHash = "$argon2id$v=19$m=32768,t=2,p=1$ZSLQr174Xq7k+QH4DWeFtg$" +
	"HqzadnAV1aHP5GJVoD1knYMHwedi4UvAA4IS+9Qiv0E"

// hashing bounds the hashes computed at once to the CPUs there are: more would
// only queue for a core while each holds argonMemoryKiB of memory.
var hashing = make(chan struct{}, runtime.GOMAXPROCS(0))

// releaseMemory hands argon2's memory back to the operating system half a second
// after a burst of hashing ends. Each hash takes argonMemoryKiB of heap; without
// this the Go runtime keeps it resident for minutes, far above what an idle server
// needs (a demo start with two hashes idled at 90 MiB instead of 27).
var releaseMemory = debounce{wait: 500 * time.Millisecond, fn: debug.FreeOSMemory}

// debounce runs fn once, wait after the last trigger of a burst.
type debounce struct {
	wait  time.Duration
	fn    func()
	mu    sync.Mutex
	timer *time.Timer
}

func (d *debounce) trigger() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer == nil {
		d.timer = time.AfterFunc(d.wait, d.fn)
		return
	}
	d.timer.Reset(d.wait)
}

// hashes counts the argon2 computations, so tests can check that every failed
// login costs exactly one whether or not the account exists.
var hashes atomic.Int64

// phc is a parsed argon2id hash in PHC string format.
type phc struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

var b64 = base64.RawStdEncoding

func (h phc) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, h.memory, h.time, h.threads, b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

var errBadHash = errors.New("identity: stored password hash is not an argon2id PHC string we accept")

// parsePHC parses $argon2id$v=19$m=<KiB>,t=<iters>,p=<threads>$<salt>$<key>.
func parsePHC(s string) (phc, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return phc{}, errBadHash
	}
	var h phc
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return phc{}, errBadHash
	}
	for i, want := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(params[i], want)
		if !ok {
			return phc{}, errBadHash
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return phc{}, errBadHash
		}
		switch i {
		case 0:
			h.memory = uint32(n)
		case 1:
			h.time = uint32(n)
		case 2:
			if n > 255 {
				return phc{}, errBadHash
			}
			h.threads = uint8(n)
		}
	}
	if h.threads < 1 || h.time < 1 || h.time > maxTime || h.memory < 8*uint32(h.threads) || h.memory > maxMemoryKiB {
		return phc{}, errBadHash
	}
	var err error
	if h.salt, err = b64.DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return phc{}, errBadHash
	}
	if h.key, err = b64.DecodeString(parts[5]); err != nil || len(h.key) < 16 {
		return phc{}, errBadHash
	}
	return h, nil
}

// derive computes the key of password under h's parameters and salt, waiting for
// a free hashing slot first (or ctx's end).
func derive(ctx context.Context, h phc, password string) ([]byte, error) {
	select {
	case hashing <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() {
		<-hashing
		releaseMemory.trigger()
	}()
	hashes.Add(1)
	return argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(len(h.key))), nil
}

// hashPassword returns the argon2id PHC string of password with the current
// parameters and a fresh random salt.
func hashPassword(ctx context.Context, password string) (string, error) {
	h := phc{memory: argonMemoryKiB, time: argonTime, threads: argonThreads,
		salt: make([]byte, argonSaltLen), key: make([]byte, argonKeyLen)}
	_, _ = rand.Read(h.salt) // crypto/rand.Read never fails (it crashes the program instead)
	key, err := derive(ctx, h, password)
	if err != nil {
		return "", err
	}
	h.key = key
	return h.String(), nil
}

// verifyPassword reports whether password matches the PHC string stored, comparing
// in constant time. A malformed stored hash is an error, not a mismatch.
func verifyPassword(ctx context.Context, stored, password string) (bool, error) {
	h, err := parsePHC(stored)
	if err != nil {
		return false, err
	}
	key, err := derive(ctx, h, password)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

// needsRehash reports whether a stored hash was made with other parameters than
// those of new hashes (or cannot be parsed), so a login that proved the password
// should store a fresh hash.
func needsRehash(stored string) bool {
	h, err := parsePHC(stored)
	return err != nil || h.memory != argonMemoryKiB || h.time != argonTime || h.threads != argonThreads ||
		len(h.salt) != argonSaltLen || len(h.key) != argonKeyLen
}
