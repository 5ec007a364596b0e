package hsm

import (
	"encoding/json"
	"net/http"
)

// AdminHandler serves the emulator's fault switches. It has no
// authentication: bind it to loopback.
//
//	GET    /faults   the faults in force (JSON Faults)
//	PUT    /faults   replace them: {"latency": "lognormal,median=2ms,p99=30ms",
//	                 "error_percent": 20, "error_code": "13", "disconnect_percent": 5,
//	                 "stall": false}
//	DELETE /faults   clear them
//	POST   /drop     close every open host connection (an HSM restart)
//	GET    /stats    {"commands", "errors", "injected", "disconnects", "stalled"}
func AdminHandler(s *Server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, s.CurrentFaults()) })
	mux.HandleFunc("PUT /faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			http.Error(w, "faults: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.SetFaults(f); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, f)
	})
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, _ *http.Request) {
		_ = s.SetFaults(Faults{})
		writeJSON(w, Faults{})
	})
	mux.HandleFunc("POST /drop", func(w http.ResponseWriter, _ *http.Request) {
		s.DropConnections()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, s.Stats())
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Stats returns the counters GET /stats shows: commands, errors,
// injected, disconnects and stalled.
func (s *Server) Stats() map[string]int64 {
	return map[string]int64{
		"commands": s.stats.Commands.Load(), "errors": s.stats.Errors.Load(), "injected": s.stats.Injected.Load(),
		"disconnects": s.stats.Disconnects.Load(), "stalled": s.stats.Stalled.Load(),
	}
}
