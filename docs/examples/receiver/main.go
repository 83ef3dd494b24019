// Command receiver is a store's webhook endpoint for the ledger's outgoing webhooks: it verifies each
// delivery's Standard Webhooks signature with the official library, drops deliveries it has seen
// (webhook-id), and answers 204. docs/api.md "Receiving webhooks" shows it; a test runs it against the
// ledger.
//
//	WHSEC=whsec_… ADDR=127.0.0.1:9000 go run ./docs/examples/receiver
package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"os"
	"sync"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func main() {
	// The endpoint's signing secret, from POST /v1/webhook_endpoints or rotate_secret. During the 24 hours
	// after a rotation each delivery carries two signatures: either secret verifies it.
	wh, err := standardwebhooks.NewWebhook(os.Getenv("WHSEC"))
	if err != nil {
		log.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen = map[string]bool{} // a real receiver keeps these in its database
	)
	http.HandleFunc("POST /ledger-webhooks", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		// Verify checks the signature over the raw body and refuses a timestamp more than 5 minutes
		// away: parse the body only after it.
		if err := wh.Verify(body, r.Header); err != nil {
			http.Error(w, "invalid signature", http.StatusBadRequest)
			return
		}
		var event struct {
			ID       string          `json:"id"`
			Type     string          `json:"type"`
			Livemode bool            `json:"livemode"`
			Data     json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &event); err != nil {
			http.Error(w, "invalid body", http.StatusBadRequest)
			return
		}
		// At least once: the same event can come again (a retry whose answer was lost).
		mu.Lock()
		dup := seen[event.ID]
		seen[event.ID] = true
		mu.Unlock()
		if !dup {
			log.Printf("received %s %s livemode=%t: %s", event.ID, event.Type, event.Livemode, event.Data)
		}
		// Answer fast (within 15 s), and do slow work after answering.
		w.WriteHeader(http.StatusNoContent)
	})
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:9000"
	}
	log.Printf("listening on %s", addr)
	log.Fatal(http.ListenAndServe(addr, nil))
}
