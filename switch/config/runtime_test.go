package config

import (
	"testing"
)

func TestParseRuntime(t *testing.T) {
	runtimeIs := func(gc int, limit ByteSize) func(*testing.T, Config) {
		return func(t *testing.T, c Config) {
			if c.Runtime.GCPercent != gc || c.Runtime.MemoryLimit != limit {
				t.Errorf("runtime %+v (limit %s), want gc_percent %d memory_limit %s", c.Runtime, c.Runtime.MemoryLimit, gc, limit)
			}
		}
	}
	runParseCases(t, []parseCase{
		{name: "defaults", yaml: "", check: runtimeIs(DefaultGCPercent, DefaultMemoryLimit)},
		{name: "zeros mean the defaults", yaml: "runtime: {gc_percent: 0, memory_limit: 0}", check: runtimeIs(DefaultGCPercent, DefaultMemoryLimit)},
		{name: "set", yaml: "runtime: {gc_percent: 150, memory_limit: 2GiB}", check: runtimeIs(150, 2<<30)},
		{name: "bytes without unit", yaml: "runtime: {memory_limit: 134217728}", check: runtimeIs(DefaultGCPercent, 128<<20)},
		{name: "KiB", yaml: "runtime: {memory_limit: 131072 KiB}", check: runtimeIs(DefaultGCPercent, 128<<20)},
		{name: "no limit", yaml: "runtime: {memory_limit: off}", check: runtimeIs(DefaultGCPercent, NoMemoryLimit)},
		{name: "pacer off, limit on", yaml: "runtime: {gc_percent: -1, memory_limit: 1GiB}", check: runtimeIs(-1, 1<<30)},
		{name: "both off", yaml: "runtime: {gc_percent: -1, memory_limit: off}", wantErr: "never be collected"},
		{name: "percent below -1", yaml: "runtime: {gc_percent: -5}", wantErr: "runtime.gc_percent -5"},
		{name: "limit too small", yaml: "runtime: {memory_limit: 10MiB}", wantErr: "runtime.memory_limit 10MiB: below 64MiB"},
		{name: "unknown unit", yaml: "runtime: {memory_limit: 1GB}", wantErr: `size "1GB"`},
		{name: "negative", yaml: "runtime: {memory_limit: -1}", wantErr: `size "-1"`},
		{name: "overflow", yaml: "runtime: {memory_limit: 9000000000 TiB}", wantErr: "size"},
		{name: "unknown key", yaml: "runtime: {gogc: 100}", wantErr: `unknown key "gogc"`},
	})
}

func TestByteSizeStringRoundTrips(t *testing.T) {
	for _, b := range []ByteSize{DefaultMemoryLimit, 1 << 30, 3 << 40, 1000, 1536 << 10, NoMemoryLimit} {
		got, err := ParseByteSize(b.String())
		if err != nil || got != b {
			t.Errorf("%d -> %q -> %d, %v", int64(b), b.String(), int64(got), err)
		}
	}
}
