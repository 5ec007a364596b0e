package hsm_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kbpay/switch/hsm"
)

// fake is an HSM whose every operation returns err and counts Close.
type fake struct {
	hsm.HSM
	err    error
	closed int
}

func (f *fake) VerifyMAC(context.Context, hsm.VerifyMACRequest) error { return f.err }
func (f *fake) Close() error                                          { f.closed++; return nil }

type fakeOptions struct{ err error }

func newRegistry(made *[]*fake) *hsm.Registry {
	r := hsm.NewRegistry()
	hsm.Register(r, "pinonly", hsm.RolePINMAC, func(_ context.Context, o fakeOptions, _ hsm.Deps) (hsm.HSM, error) {
		f := &fake{err: o.err}
		*made = append(*made, f)
		return f, nil
	})
	return r
}

func TestRegistryOpen(t *testing.T) {
	var made []*fake
	r := newRegistry(&made)
	ctx := context.Background()
	tests := []struct {
		name    string
		backend string
		role    hsm.Role
		opts    any
		wantErr error
		wantMsg string
	}{
		{"opens with its options", "pinonly", hsm.RolePINMAC, fakeOptions{}, nil, ""},
		{"unknown name", "thales", hsm.RolePINMAC, fakeOptions{}, hsm.ErrUnknownBackend, "registered: pinonly"},
		{"role it cannot serve", "pinonly", hsm.RoleData, fakeOptions{}, hsm.ErrRoleNotSupported, "for data"},
		{"both roles when it serves one", "pinonly", hsm.RoleData | hsm.RolePINMAC, fakeOptions{}, hsm.ErrRoleNotSupported, ""},
		{"another backend's options", "pinonly", hsm.RolePINMAC, struct{}{}, nil, "takes options of type hsm_test.fakeOptions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := r.Open(ctx, tt.backend, tt.role, tt.opts, hsm.Deps{})
			if tt.wantErr == nil && tt.wantMsg == "" {
				if err != nil || h == nil {
					t.Fatalf("Open = %v, %v", h, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Open succeeded, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Open error %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Open error %q does not say %q", err, tt.wantMsg)
			}
		})
	}
}

func TestRolesCloseOnce(t *testing.T) {
	a, b := &fake{}, &fake{}
	if err := (hsm.Roles{PINMAC: a, Data: a}).Close(); err != nil || a.closed != 1 {
		t.Errorf("shared backend closed %d times (err %v), want once", a.closed, err)
	}
	if err := (hsm.Roles{PINMAC: a, Data: b}).Close(); err != nil || a.closed != 2 || b.closed != 1 {
		t.Errorf("split backends closed %d and %d times (err %v)", a.closed-1, b.closed, err)
	}
}

func TestInstrumentCountsErrorsByKind(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := hsm.NewMetrics(reg)
	for _, tc := range []struct {
		err  error
		kind string
	}{
		{nil, ""},
		{hsm.ErrMACMismatch, "refused"},
		{hsm.ErrHSMUnavailable, "unavailable"},
		{hsm.ErrHSMTimeout, "timeout"},
		{&hsm.DeviceError{Backend: "payshield", Command: "M8", Code: "15"}, "device"},
	} {
		h := hsm.Instrument(&fake{err: tc.err}, "fake", m)
		_ = h.VerifyMAC(context.Background(), hsm.VerifyMACRequest{})
		if tc.kind != "" {
			var c dto.Metric
			if err := m.Errors().WithLabelValues("fake", "verify_mac", tc.kind).Write(&c); err != nil {
				t.Fatal(err)
			}
			if n := c.GetCounter().GetValue(); n != 1 {
				t.Errorf("%v counted %v times as %s, want 1", tc.err, n, tc.kind)
			}
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "hsm_operation_seconds" {
			if n := len(mf.GetMetric()); n != 1 || mf.GetMetric()[0].GetHistogram().GetSampleCount() != 5 {
				t.Errorf("%d latency series, want one (fake, verify_mac) with 5 samples", n)
			}
		}
	}
}
