package loadgen

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseTokenMix(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    string // String() of the parsed mix
		wantErr bool
	}{
		{in: DefaultTokens, want: DefaultTokens},
		{in: " tok_visa = 3 , tok_decline=1 ", want: "tok_visa=3,tok_decline=1"},
		{in: "tok_visa", want: "tok_visa=1"},
		{in: "tok_visa=1,,", want: "tok_visa=1"},
		{in: "", wantErr: true},
		{in: "tok_visa=0", wantErr: true},
		{in: "tok_visa=-2", wantErr: true},
		{in: "tok_visa=x", wantErr: true},
		{in: "=3", wantErr: true},
		{in: "tok_visa=1,tok_visa=2", wantErr: true},
	} {
		m, err := ParseTokenMix(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseTokenMix(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if err == nil && m.String() != tc.want {
			t.Errorf("ParseTokenMix(%q) = %q, want %q", tc.in, m.String(), tc.want)
		}
	}
}

// Each token owns a run of the cumulative weights as wide as its weight.
func TestTokenMixPickAt(t *testing.T) {
	m, err := ParseTokenMix("a=2,b=3,c=1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for n := range m.total {
		got = append(got, m.pickAt(n))
	}
	if diff := cmp.Diff([]string{"a", "a", "b", "b", "b", "c"}, got); diff != "" {
		t.Errorf("pickAt over 0..5 (-want +got):\n%s", diff)
	}
	// Pick draws from the whole range: with a seeded source every token shows up.
	seen := map[string]int{}
	r := rand.New(rand.NewPCG(1, 2))
	for range 600 {
		seen[m.Pick(r)]++
	}
	if len(seen) != 3 || seen["b"] < seen["c"] {
		t.Errorf("600 picks of a=2,b=3,c=1 gave %v", seen)
	}
}

func TestParseBrowseRate(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{in: "100", want: 100},
		{in: "2x", want: 100},
		{in: "0.5x", want: 25},
		{in: "0", want: 0},
		{in: "-1", wantErr: true},
		{in: "x", wantErr: true},
		{in: "fast", wantErr: true},
		{in: "NaN", wantErr: true},
	} {
		got, err := ParseBrowseRate(tc.in, 50)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseBrowseRate(%q, 50) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseRestock(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Restock
		wantErr bool
	}{
		{in: "100:1000", want: Restock{Below: 100, Amount: 1000, Every: time.Second}},
		{in: "0:5", want: Restock{Below: 0, Amount: 5, Every: time.Second}},
		{in: "off", want: Restock{}},
		{in: "100", wantErr: true},
		{in: "100:0", wantErr: true},
		{in: "-1:10", wantErr: true},
		{in: "1:2000000", wantErr: true},
	} {
		got, err := ParseRestock(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseRestock(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	if (Restock{}).Enabled() {
		t.Error("the zero Restock restocks")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("the defaults are not valid: %v", err)
	}
	for name, change := range map[string]func(*Config){
		"no URL":        func(c *Config) { c.URLs = nil },
		"bad URL":       func(c *Config) { c.URLs = []string{"localhost:8080"} },
		"zero rate":     func(c *Config) { c.Rate = 0 },
		"no customers":  func(c *Config) { c.Customers = 0 },
		"unknown await": func(c *Config) { c.Await = "websocket" },
		"no tokens":     func(c *Config) { c.Tokens = TokenMix{} },
		"no in flight":  func(c *Config) { c.MaxInFlight = 0 },
		"zero duration": func(c *Config) { c.Duration = 0 },
	} {
		c := DefaultConfig()
		change(&c)
		if c.Validate() == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
}
