package accounts

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

// phcPattern is the PHC string format of an argon2id hash with the current
// parameters, a 16-byte salt and a 32-byte key (unpadded standard base64).
var phcPattern = regexp.MustCompile(fmt.Sprintf(`^\$argon2id\$v=19\$m=%d,t=%d,p=%d\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`,
	argonMemoryKiB, argonTime, argonThreads))

// otherHash returns the PHC string of password made with the given parameters,
// computed here with argon2 directly rather than through the code under test.
func otherHash(password string, m, t uint32, p uint8, saltLen, keyLen int) string {
	salt := []byte(strings.Repeat("s", saltLen))
	key := argon2.IDKey([]byte(password), salt, t, m, p, uint32(keyLen))
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, t, p,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func TestHashPasswordFormatAndVerify(t *testing.T) {
	ctx := t.Context()
	const pw = "correct horse battery staple"
	h1, err := hashPassword(ctx, pw)
	if err != nil {
		t.Fatalf("hashPassword: %v", err)
	}
	h2, err := hashPassword(ctx, pw)
	if err != nil {
		t.Fatalf("hashPassword: %v", err)
	}
	for _, h := range []string{h1, h2} {
		if !phcPattern.MatchString(h) {
			t.Errorf("hash %q is not in PHC format with the current parameters", h)
		}
		if strings.Contains(h, pw) {
			t.Errorf("hash %q contains the password", h)
		}
	}
	if h1 == h2 {
		t.Error("two hashes of one password are equal: the salt is not random")
	}

	// The format is argon2id's, not only ours: a key computed by argon2 itself
	// from the salt we wrote must be the key we wrote.
	parsed, err := parsePHC(h1)
	if err != nil {
		t.Fatalf("parsePHC(%q): %v", h1, err)
	}
	want := argon2.IDKey([]byte(pw), parsed.salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	if string(want) != string(parsed.key) {
		t.Error("the stored key is not argon2id of the password and salt")
	}

	tests := []struct {
		name     string
		password string
		want     bool
	}{
		{"the password", pw, true},
		{"another password", "correct horse battery stapler", false},
		{"other case", strings.ToUpper(pw), false},
		{"a prefix", pw[:len(pw)-1], false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := verifyPassword(ctx, h1, tt.password)
			if err != nil {
				t.Fatalf("verifyPassword: %v", err)
			}
			if got != tt.want {
				t.Errorf("verifyPassword(%q) = %v, want %v", tt.password, got, tt.want)
			}
		})
	}
}

// A hash made with other parameters still verifies with its own, and needs a rehash.
func TestOtherParameters(t *testing.T) {
	const pw = "an older password hash"
	tests := []struct {
		name string
		hash string
	}{
		{"OWASP minimum memory", otherHash(pw, 19456, argonTime, argonThreads, argonSaltLen, argonKeyLen)},
		{"fewer iterations", otherHash(pw, argonMemoryKiB, 1, argonThreads, argonSaltLen, argonKeyLen)},
		{"more lanes", otherHash(pw, argonMemoryKiB, argonTime, 2, argonSaltLen, argonKeyLen)},
		{"shorter salt", otherHash(pw, argonMemoryKiB, argonTime, argonThreads, 8, argonKeyLen)},
		{"longer key", otherHash(pw, argonMemoryKiB, argonTime, argonThreads, argonSaltLen, 64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := verifyPassword(t.Context(), tt.hash, pw)
			if err != nil || !ok {
				t.Errorf("verifyPassword = %v, %v; want true", ok, err)
			}
			if ok, _ := verifyPassword(t.Context(), tt.hash, pw+"!"); ok {
				t.Error("a wrong password verifies")
			}
			if !needsRehash(tt.hash) {
				t.Error("needsRehash = false for a hash with other parameters")
			}
		})
	}
}

func TestNeedsRehashCurrent(t *testing.T) {
	h, err := hashPassword(t.Context(), "a current password")
	if err != nil {
		t.Fatalf("hashPassword: %v", err)
	}
	if needsRehash(h) {
		t.Errorf("needsRehash(%q) = true for a hash with the current parameters", h)
	}
	if !needsRehash("not a hash") {
		t.Error(`needsRehash("not a hash") = false, want true`)
	}
}

// Login verifies unknown emails against dummyHash so that they cost what a real
// account costs; with other parameters than real hashes, they would not.
func TestDummyHashHasCurrentParameters(t *testing.T) {
	if !phcPattern.MatchString(dummyHash) || needsRehash(dummyHash) {
		t.Errorf("dummyHash %q does not have the current parameters; regenerate it with hashPassword", dummyHash)
	}
}

func TestParsePHCRejects(t *testing.T) {
	good := otherHash("x", 64, 1, 1, 16, 32)
	if _, err := parsePHC(good); err != nil {
		t.Fatalf("parsePHC(%q): %v", good, err)
	}
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=..,t=..,p=.., salt, key
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	tests := []struct{ name, hash string }{
		{"empty", ""},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", with(1, "argon2i")},
		{"argon2d", with(1, "argon2d")},
		{"version 16", with(2, "v=16")},
		{"no version", strings.Join(append(parts[:2:2], parts[3:]...), "$")},
		{"parameters out of order", with(3, "t=1,m=64,p=1")},
		{"missing parameter", with(3, "m=64,t=1")},
		{"zero lanes", with(3, "m=64,t=1,p=0")},
		{"lanes over 255", with(3, "m=64,t=1,p=256")},
		{"zero iterations", with(3, "m=64,t=0,p=1")},
		{"too many iterations", with(3, fmt.Sprintf("m=64,t=%d,p=1", maxTime+1))},
		{"too much memory", with(3, fmt.Sprintf("m=%d,t=1,p=1", maxMemoryKiB+1))},
		{"less memory than lanes need", with(3, "m=15,t=1,p=2")},
		{"negative memory", with(3, "m=-1,t=1,p=1")},
		{"salt not base64", with(4, "!!!!!!!!!!!")},
		{"short salt", with(4, base64.RawStdEncoding.EncodeToString([]byte("1234567")))},
		{"padded key", with(5, parts[5]+"=")},
		{"short key", with(5, base64.RawStdEncoding.EncodeToString([]byte("123456789012345")))},
		{"extra field", good + "$x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parsePHC(tt.hash); !errors.Is(err, errBadHash) {
				t.Errorf("parsePHC(%q) err = %v, want errBadHash", tt.hash, err)
			}
			if ok, err := verifyPassword(t.Context(), tt.hash, "x"); ok || err == nil {
				t.Errorf("verifyPassword on %q = %v, %v; want false and an error", tt.hash, ok, err)
			}
		})
	}
}

// Hashing waits for a free slot; a caller whose context ends first gives up.
func TestHashingHonoursContext(t *testing.T) {
	for range cap(hashing) {
		hashing <- struct{}{}
	}
	defer func() {
		for range cap(hashing) {
			<-hashing
		}
	}()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	before := hashes.Load()
	if _, err := hashPassword(ctx, "a password that waits"); !errors.Is(err, context.Canceled) {
		t.Errorf("hashPassword with every slot busy and a cancelled context: err = %v, want context.Canceled", err)
	}
	if n := hashes.Load() - before; n != 0 {
		t.Errorf("%d hashes computed, want none", n)
	}
}

// BenchmarkHashPassword measures one password hash with the current parameters:
// the cost of a login, a registration and a failed login. The figure chosen for
// the parameters is in the comment on argonMemoryKiB and the other constants.
func BenchmarkHashPassword(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		if _, err := hashPassword(ctx, "demo-customer-password"); err != nil {
			b.Fatal(err)
		}
	}
}
