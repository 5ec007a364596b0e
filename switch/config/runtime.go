package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Runtime defaults (docs/configuration.md says why).
const (
	DefaultGCPercent   = 400
	DefaultMemoryLimit = 384 << 20
)

// Runtime tunes the Go runtime of switchd: the garbage collector's pace
// and a soft memory limit. The GOGC and GOMEMLIMIT environment variables,
// when set, win over these.
type Runtime struct {
	// GCPercent is GOGC: the heap grows by this percentage of the live
	// heap before a collection. -1 turns the pacer off (the memory limit
	// alone triggers collections). Default 400.
	GCPercent int `yaml:"gc_percent"`
	// MemoryLimit is GOMEMLIMIT, a soft limit on the memory the Go runtime
	// holds (heap, stacks, ...): nearing it, collections run more often
	// whatever GCPercent says. "off" removes it. Default 384MiB.
	MemoryLimit ByteSize `yaml:"memory_limit"`
}

// NoMemoryLimit is memory_limit: off (the Go runtime's own "no limit").
const NoMemoryLimit ByteSize = math.MaxInt64

// ByteSize is a size in bytes, written as an integer with an optional
// unit (B, KiB, MiB, GiB, TiB) or "off" (NoMemoryLimit).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// ParseByteSize reads s as a ByteSize.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return NoMemoryLimit, nil
	}
	num, shift := s, uint(0)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, shift = strings.TrimSpace(n), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("size %q: want a whole number of B, KiB, MiB, GiB or TiB (\"384MiB\"), or off", s)
	}
	return ByteSize(n << shift), nil
}

// UnmarshalYAML reads a ByteSize.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

// String writes b as ParseByteSize reads it.
func (b ByteSize) String() string {
	if b == NoMemoryLimit {
		return "off"
	}
	for _, u := range byteUnits {
		if b != 0 && b%(1<<u.shift) == 0 {
			return strconv.FormatInt(int64(b>>u.shift), 10) + u.suffix
		}
	}
	return "0B"
}

func (r *Runtime) setDefaults() {
	r.GCPercent = orDefaultInt(r.GCPercent, DefaultGCPercent)
	if r.MemoryLimit == 0 {
		r.MemoryLimit = DefaultMemoryLimit
	}
}

// validate reports what is wrong with r.
func (r Runtime) validate(bad func(string, ...any)) {
	if r.GCPercent < -1 {
		bad("runtime.gc_percent %d: want -1 (off) or more", r.GCPercent)
	}
	if r.GCPercent == -1 && r.MemoryLimit == NoMemoryLimit {
		bad("runtime.gc_percent -1 with memory_limit off: the heap would never be collected")
	}
	if r.MemoryLimit < 64<<20 {
		bad("runtime.memory_limit %s: below 64MiB the collector would run without pause", r.MemoryLimit)
	}
}
