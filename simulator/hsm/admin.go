package hsm

import (
	"encoding/json"
	"net/http"
)

// AdminHandler serves the emulator's fault switches. It has no
// authentication: bind it to loopback.
//
//	GET    /faults   the faults in force (JSON Faults; durations in ns)
//	PUT    /faults   replace them: {"latency_min": 2000000, "error_percent": 20,
//	                 "error_code": "13", "disconnect_percent": 5, "stall": false}
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
		if f.ErrorPercent < 0 || f.ErrorPercent > 100 || f.DisconnectPercent < 0 || f.DisconnectPercent > 100 || f.LatencyMin < 0 || f.LatencyMax < 0 {
			http.Error(w, "faults: percentages are 0-100 and latencies not negative", http.StatusBadRequest)
			return
		}
		s.SetFaults(f)
		writeJSON(w, f)
	})
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, _ *http.Request) {
		s.SetFaults(Faults{})
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
