package handlers

import (
	_ "embed"
	"net/http"
)

// healthz is liveness: the process serves HTTP.
func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is readiness: writes to the log work, the projection is running and within ReadyMaxLag events
// of the log, and every ReadyCheck holds.
func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	lag := a.cfg.Projection.Lag()
	body := map[string]any{"status": "ready", "projection_lag": lag}
	status := http.StatusOK
	if a.cfg.WriteHealth != nil && a.cfg.WriteHealth() != nil {
		// The cause (a path, a server's words) is logged by the health probe, not served unauthenticated.
		body["status"], body["reason"] = "not_ready", "writes to the event log are failing"
		status = http.StatusServiceUnavailable
	} else if err := a.cfg.Projection.Err(); err != nil {
		body["status"], body["reason"] = "not_ready", "the projection is failing and retrying"
		status = http.StatusServiceUnavailable
	} else if lag > a.cfg.ReadyMaxLag {
		body["status"], body["reason"] = "not_ready", "the projection is catching up"
		status = http.StatusServiceUnavailable
	}
	for _, c := range a.cfg.ReadyChecks {
		if err := c.Err(); err != nil && status == http.StatusOK {
			body["status"], body["reason"] = "not_ready", c.Name+": "+err.Error()
			status = http.StatusServiceUnavailable
		}
	}
	writeJSON(w, status, body)
}

//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
