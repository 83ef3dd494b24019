package webhooksout

import (
	"encoding/json"
	"time"
)

// body is the outgoing message, members in DESIGN's order.
type body struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt string          `json:"created_at"`
	Livemode  bool            `json:"livemode"`
	Data      json.RawMessage `json:"data"`
}

// Body is the JSON body of an outgoing event (DESIGN.md "Webhooks out"): {"id": eventID, "type",
// "created_at": createdAt in RFC 3339, UTC, to the second as the API writes times, "livemode", "data": the object as GET returns it at that
// event}. data is copied as given (compacted); nil or empty data is JSON null. The same inputs always
// give the same bytes, so every attempt sends (and signs) the same body.
func Body(eventID, eventType string, createdAt time.Time, livemode bool, data json.RawMessage) []byte {
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	b, err := json.Marshal(body{ID: eventID, Type: eventType, CreatedAt: createdAt.UTC().Format(createdAtLayout),
		Livemode: livemode, Data: data})
	if err != nil {
		// Only invalid data can fail: a renderer's bug, never a request's.
		panic("webhooksout.Body: data is not JSON: " + err.Error())
	}
	return b
}

// createdAtLayout is how the API writes times (handlers' rfc3339): RFC 3339, UTC, whole seconds.
const createdAtLayout = "2006-01-02T15:04:05+00:00"
