// Package salecache keeps the sales this process changed last, for the command handlers and the payment
// processor.
package salecache

import (
	"sync"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// Cache keeps the sales this process changed last, as they stand after its own appends, so the next
// decision on a sale neither waits for the projection to catch up nor reads it. It is a hint: a copy
// older than the log (another process, or another path of this one, changed the sale) fails its
// append's expected sequence, and the retry reads the log. Safe for concurrent use.
//
// It holds no personal data: Put keeps a sale as an erased customer's sale reads (domain.ErasePersonal),
// since a copy kept here would outlive the customer's erasure on every replica that has one. No
// decision reads the buyer's details, and answers are rendered from the read store or the log.
type Cache struct {
	mu    sync.Mutex
	max   int
	sales map[string]Entry
}

// Entry is a cached sale with its store and mode.
type Entry struct {
	Sale          domain.Sale
	StoreID, Mode string
}

// New is a cache of at most max sales.
func New(max int) *Cache {
	return &Cache{max: max, sales: make(map[string]Entry)}
}

// Get returns the cached copy of sale id.
func (c *Cache) Get(id string) (Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sales[id]
	return s, ok
}

// Put keeps s, without its personal data; when full, an arbitrary half is dropped (map order is random).
func (c *Cache) Put(s Entry) {
	s.Sale.Started = domain.ErasePersonal(s.Sale.Started)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sales) >= c.max {
		n := 0
		for id := range c.sales {
			if n >= c.max/2 {
				break
			}
			delete(c.sales, id)
			n++
		}
	}
	c.sales[s.Sale.ID] = s
}

// Forget drops sale id (its append failed: the copy may be behind the log).
func (c *Cache) Forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sales, id)
}

// Applied is s after its own appended events, the last of which is at sequence last.
func Applied(s domain.Sale, evs []events.Envelope, last uint64) domain.Sale {
	for i, e := range evs {
		e.Sequence = last - uint64(len(evs)-1-i)
		s = s.Evolve(e)
	}
	return s
}
