package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/agora-commerce/agora/internal/bus"
)

// Load reads the --faults setting: a JSON schedule inline ("{…}"), the path of a
// JSON file holding one ("….json"), or the compact syntax of Parse. The schedule
// is validated.
func Load(value string) (Schedule, error) {
	value = strings.TrimSpace(value)
	switch {
	case strings.HasPrefix(value, "{"):
		return decode([]byte(value))
	case strings.HasSuffix(value, ".json"):
		data, err := os.ReadFile(value)
		if err != nil {
			return Schedule{}, fmt.Errorf("faults: %w", err)
		}
		return decode(data)
	default:
		return Parse(value)
	}
}

func decode(data []byte) (Schedule, error) {
	var s Schedule
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Schedule{}, fmt.Errorf("faults: %w", err)
	}
	if err := s.Validate(); err != nil {
		return Schedule{}, fmt.Errorf("faults: %w", err)
	}
	return s, nil
}

// Parse reads the compact syntax: items separated by ";", each either "seed=N",
// "max=N" (Schedule.MaxPerMessage) or a rule — its kind, then any of type=PREFIX,
// module=NAME, p=PROBABILITY (default 1) and delay=DURATION. For example:
//
//	seed=42; drop type=payments. p=0.2; delay module=inventory p=0.5 delay=200ms; crash p=0.1
func Parse(spec string) (Schedule, error) {
	var s Schedule
	for _, item := range strings.Split(spec, ";") {
		words := strings.Fields(item)
		if len(words) == 0 {
			continue
		}
		var err error
		switch key, val, isSetting := strings.Cut(words[0], "="); {
		case isSetting && len(words) == 1 && key == "seed":
			s.Seed, err = strconv.ParseUint(val, 10, 64)
		case isSetting && len(words) == 1 && key == "max":
			s.MaxPerMessage, err = strconv.Atoi(val)
		case isSetting:
			err = fmt.Errorf("want seed=N, max=N or a rule starting with its kind")
		default:
			var r Rule
			r, err = parseRule(words)
			s.Rules = append(s.Rules, r)
		}
		if err != nil {
			return Schedule{}, fmt.Errorf("faults: %q: %w", strings.TrimSpace(item), err)
		}
	}
	if err := s.Validate(); err != nil {
		return Schedule{}, fmt.Errorf("faults: %w", err)
	}
	return s, nil
}

// parseRule reads one rule of the compact syntax: its kind, then key=value words.
func parseRule(words []string) (Rule, error) {
	r := Rule{Kind: bus.FaultKind(words[0]), Probability: 1}
	if !knownKind(r.Kind) {
		return r, fmt.Errorf("unknown fault %q (want %s)", words[0], kindList())
	}
	for _, w := range words[1:] {
		key, val, ok := strings.Cut(w, "=")
		if !ok {
			return r, fmt.Errorf("%q: want key=value", w)
		}
		var err error
		switch key {
		case "type":
			r.Type = val
		case "module":
			r.Module = val
		case "p":
			r.Probability, err = strconv.ParseFloat(val, 64)
		case "delay":
			var d time.Duration
			d, err = time.ParseDuration(val)
			r.DelayMS = d.Milliseconds()
		default:
			err = fmt.Errorf("unknown key %q (want type, module, p or delay)", key)
		}
		if err != nil {
			return r, err
		}
	}
	return r, nil
}

// String writes s in the compact syntax of Parse ("" for the empty schedule),
// leaving out what Parse takes by default (seed and max 0, p=1, no delay). Parse
// reads it back to s when its types and modules hold no space or ";" (Parse's
// own never do).
func (s Schedule) String() string {
	var items []string
	if s.Seed != 0 {
		items = append(items, "seed="+strconv.FormatUint(s.Seed, 10))
	}
	if s.MaxPerMessage != 0 {
		items = append(items, "max="+strconv.Itoa(s.MaxPerMessage))
	}
	for _, r := range s.Rules {
		words := []string{string(r.Kind)}
		if r.Type != "" {
			words = append(words, "type="+r.Type)
		}
		if r.Module != "" {
			words = append(words, "module="+r.Module)
		}
		if r.Probability != 1 {
			words = append(words, "p="+strconv.FormatFloat(r.Probability, 'g', -1, 64))
		}
		if r.DelayMS != 0 {
			words = append(words, "delay="+(time.Duration(r.DelayMS)*time.Millisecond).String())
		}
		items = append(items, strings.Join(words, " "))
	}
	return strings.Join(items, "; ")
}
