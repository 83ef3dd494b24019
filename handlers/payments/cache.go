package payments

import (
	"sync"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// saleCache keeps the sales this process changed last, as they stand after its own appends, so the next
// decision on a sale neither waits for the projection to catch up nor reads it. It is a hint: a copy
// older than the log (another process changed the sale) fails its append's expected sequence, and the
// retry reads the log.
type saleCache struct {
	mu    sync.Mutex
	max   int
	sales map[string]cachedSale
}

type cachedSale struct {
	sale          domain.Sale
	storeID, mode string
}

func newSaleCache(max int) *saleCache {
	return &saleCache{max: max, sales: make(map[string]cachedSale)}
}

func (c *saleCache) get(id string) (cachedSale, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sales[id]
	return s, ok
}

// put keeps s; when full, an arbitrary half is dropped (map order is random).
func (c *saleCache) put(s cachedSale) {
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
	c.sales[s.sale.ID] = s
}

func (c *saleCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sales, id)
}

// applied is s after its own appended events, the last of which is at sequence last.
func applied(s domain.Sale, evs []events.Envelope, last uint64) domain.Sale {
	for i, e := range evs {
		e.Sequence = last - uint64(len(evs)-1-i)
		s = s.Evolve(e)
	}
	return s
}
