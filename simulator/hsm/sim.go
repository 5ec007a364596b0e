// Package hsm is a payShield-compatible host-command emulator for tests
// and demos: NC, CA, CC, G0, M6, M8, A0, A6, FA and BU over TCP with the
// payShield framing (2-byte big-endian length, a configurable header the
// answer echoes), keys under a public test LMK as X9.143 (TR-31) version D
// key blocks, the cryptography of hsm/paycrypto, and faults (latency,
// error codes, disconnects, stalls) switched through an admin API.
//
// The test LMK is public: never load a real key into the emulator.
package hsm

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/kbpay/switch/hsm/payshield/hostcmd"
)

// TestLMKHex is the emulator's default local master key: a public
// AES-256 key-block LMK for tests and demos.
const TestLMKHex = "0F1E2D3C4B5A69788796A5B4C3D2E1F0F0E1D2C3B4A5968778695A4B3C2D1E0F"

// DefaultAddr is where the emulator listens by default (a payShield's
// default host port).
const DefaultAddr = "127.0.0.1:1500"

// Options configures New.
type Options struct {
	// Addr is the host-command listen address. Default DefaultAddr; tests
	// use 127.0.0.1:0.
	Addr string
	// HeaderLength is the message header length. Default 4.
	HeaderLength int
	// LMK is the AES-256 local master key. Default TestLMKHex.
	LMK []byte
	// Log receives connection events. Default: no logging.
	Log *zap.Logger
}

// Server is a running emulator.
type Server struct {
	opts   Options
	lmk    []byte
	log    *zap.Logger
	ln     net.Listener
	faults atomic.Pointer[Faults]
	rng    *latencyRand
	stats  Stats

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Stats count what the emulator did.
type Stats struct {
	Commands    atomic.Int64 `json:"-"`
	Errors      atomic.Int64 `json:"-"`
	Injected    atomic.Int64 `json:"-"`
	Disconnects atomic.Int64 `json:"-"`
	Stalled     atomic.Int64 `json:"-"`
}

// New listens on opts.Addr and serves until Close.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.HeaderLength == 0 {
		opts.HeaderLength = 4
	}
	if opts.LMK == nil {
		opts.LMK, _ = hex.DecodeString(TestLMKHex)
	}
	if len(opts.LMK) != 32 {
		return nil, fmt.Errorf("hsmsim: LMK must be 32 bytes (AES-256), got %d", len(opts.LMK))
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("hsmsim: listening on %s: %w", opts.Addr, err)
	}
	s := &Server{opts: opts, lmk: opts.LMK, log: opts.Log, ln: ln, conns: map[net.Conn]struct{}{}, rng: newLatencyRand()}
	s.faults.Store(&Faults{})
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the bound host-command address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// HeaderLength is the configured header length.
func (s *Server) HeaderLength() int { return s.opts.HeaderLength }

// Close stops listening, drops every connection and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// DropConnections closes every open host connection (the HSM restarting);
// the listener stays open.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

// serve reads commands and answers each as soon as it is done (in its
// own goroutine, so a slow command does not hold up the next: clients
// match answers by header).
func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	var (
		wmu     sync.Mutex
		pending sync.WaitGroup
	)
	defer func() {
		_ = c.Close()
		pending.Wait()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := bufio.NewReader(c)
	for {
		msg, err := hostcmd.ReadFrame(r)
		if err != nil {
			return
		}
		s.stats.Commands.Add(1)
		f := s.faults.Load()
		if f.Stall {
			s.stats.Stalled.Add(1)
			continue // read, never answered
		}
		if f.DisconnectPercent > 0 && rand.Float64()*100 < f.DisconnectPercent {
			s.stats.Disconnects.Add(1)
			return
		}
		pending.Add(1)
		go func() {
			defer pending.Done()
			if d := s.rng.delay(f); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
			}
			out := s.Handle(msg, f)
			frame, err := hostcmd.AppendFrame(nil, out)
			if err != nil {
				return
			}
			wmu.Lock()
			defer wmu.Unlock()
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			_, _ = c.Write(frame)
		}()
	}
}

// Handle executes one command message and returns the answer message;
// f's error injection applies. Exported for tests and fuzzing.
func (s *Server) Handle(msg []byte, f *Faults) []byte {
	header, code, cmd, err := hostcmd.DecodeCommand(msg, s.opts.HeaderLength)
	resp := hostcmd.Response{Header: header, Code: hostcmd.ResponseCode(code)}
	if resp.Code == "" {
		resp.Code = "ZZ" // no command code to answer to
	}
	switch {
	case errors.Is(err, hostcmd.ErrUnknownCommand):
		resp.Error = hostcmd.CommandDisabled
	case err != nil:
		resp.Error = hostcmd.InputDataError
	case f != nil && f.ErrorPercent > 0 && rand.Float64()*100 < f.ErrorPercent:
		s.stats.Injected.Add(1)
		resp.Error = f.errorCode()
	default:
		resp.Error, resp.Body = s.execute(cmd)
	}
	if resp.Error != hostcmd.OK && (code != "FA" || resp.Error != hostcmd.ParityAdvice) {
		s.stats.Errors.Add(1)
		resp.Body = nil // FA's parity advice alone keeps its fields
	}
	return hostcmd.EncodeResponse(resp)
}
