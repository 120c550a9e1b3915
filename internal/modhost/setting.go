package modhost

import (
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"
)

// Setting returns the flag of one setting: --name on the command line, or the
// environment variable EnvName(name); its default is *dst's value when Setting is
// called, and the parsed value is written to *dst.
func Setting[T string | int | int64 | bool | float64 | time.Duration](dst *T, name, usage string) ucli.Flag {
	env := ucli.EnvVars(EnvName(name))
	switch d := any(dst).(type) {
	case *string:
		return &ucli.StringFlag{Name: name, Value: *d, Destination: d, Sources: env, Usage: usage}
	case *int:
		return &ucli.IntFlag{Name: name, Value: *d, Destination: d, Sources: env, Usage: usage}
	case *int64:
		return &ucli.Int64Flag{Name: name, Value: *d, Destination: d, Sources: env, Usage: usage}
	case *bool:
		return &ucli.BoolFlag{Name: name, Value: *d, Destination: d, Sources: env, Usage: usage}
	case *float64:
		return &ucli.FloatFlag{Name: name, Value: *d, Destination: d, Sources: env, Usage: usage}
	default: // the type set leaves only time.Duration
		p := any(dst).(*time.Duration)
		return &ucli.DurationFlag{Name: name, Value: *p, Destination: p, Sources: env, Usage: usage}
	}
}

// EnvName is the environment variable of the setting name: AGORA_ and the name in
// upper case, dashes as underscores ("smtp-url": AGORA_SMTP_URL).
func EnvName(name string) string {
	return "AGORA_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}
