package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"github.com/nyaruka/phonenumbers"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/salesledger/ledger/events"
	"github.com/salesledger/ledger/projections/sqlite"
)

// BenchmarkSearchCustomers measures GET /v1/customers: (*sqlite.Store).ListCustomers, the handler's query
// (it then only looks up each row's store and encodes the JSON, not counted here), over a read store of
// 300,000 customers: search, the first page, a deep cursor and page mode. The target is a p99
// under 20 ms for a fragment of an email.
//
// The store is built once through the real fold (customer_registered events applied with Store.Apply
// in batches of 4,096) and cached under os.TempDir(), keyed by schema and generator version, like the
// sales benchmark's (see loadCustomersFixture). Before the sub-benchmarks, logPlans logs EXPLAIN QUERY
// PLAN and a one-off timing of every shape. Every sub-benchmark runs b.N queries one after another,
// with parameters drawn before the timer from a generator seeded per case, times each query, and
// reports p50, p99 and max in milliseconds (nearest rank) and the rows returned per query; ns/op is
// the mean per query.
//
// The setup log (build, plans) shows with -v. The plans of the second page of a search take minutes
// each and run only with LEDGER_BENCH_SLOW_PLANS=1 (about 9 minutes in all instead of about 1):
//
//	go test -v -run '^$' -bench SearchCustomers -benchtime 2000x -timeout 30m ./projections/sqlite/
func BenchmarkSearchCustomers(b *testing.B) {
	fx := loadCustomersFixture(b)
	st := fx.store
	ctx := context.Background()

	fx.logPlans(b)

	scope := func() sqlite.CustomerFilter {
		return sqlite.CustomerFilter{StoreID: cbBigStore, Mode: events.ModeLive, Limit: 15}
	}
	cases := []struct {
		name string
		make func(r *rand.Rand) sqlite.CustomerFilter
	}{
		{"email-fragment", func(r *rand.Rand) sqlite.CustomerFilter {
			// What a support agent pastes or types: 5 to 8 characters from anywhere in a customer's
			// address ("n.dia", "ail.co", "rtin1234").
			f := scope()
			f.Search = substring(r, cbCustomerOf(fx.randomBigLive(r)).email, 5+r.IntN(4))
			return f
		}},
		{"name-fragment", func(r *rand.Rand) sqlite.CustomerFilter {
			// 3 to 6 characters of a first or last name, as typed: lower case, capitalised or upper case.
			f := scope()
			c := cbCustomerOf(fx.randomBigLive(r))
			name := c.first
			if r.IntN(2) == 0 {
				name = c.last
			}
			f.Search = mixCase(r, substring(r, name, 3+r.IntN(4)))
			return f
		}},
		{"common-fragment", func(r *rand.Rand) sqlite.CustomerFilter {
			f := scope()
			f.Search = cbCommonFragments[r.IntN(len(cbCommonFragments))]
			return f
		}},
		{"phone-digits", func(r *rand.Rand) sqlite.CustomerFilter {
			// Six consecutive digits of a customer's number, country code included or not.
			f := scope()
			phone := cbCustomerOf(int(fx.withPhone[r.IntN(len(fx.withPhone))])).phone
			f.Search = substring(r, strings.TrimPrefix(phone, "+"), 6)
			return f
		}},
		{"phone-as-typed", func(r *rand.Rand) sqlite.CustomerFilter {
			// A customer's whole number as a person types it: international with spaces, national with
			// its trunk prefix, or with 00 instead of + (each expanded into its digit forms, one OR query).
			f := scope()
			c := cbCustomerOf(int(fx.withPhone[r.IntN(len(fx.withPhone))]))
			num, err := phonenumbers.Parse(c.phone, "")
			if err != nil {
				b.Fatal(err)
			}
			switch r.IntN(3) {
			case 0:
				f.Search = phonenumbers.Format(num, phonenumbers.INTERNATIONAL)
			case 1:
				f.Search = phonenumbers.Format(num, phonenumbers.NATIONAL)
			default:
				f.Search = "00" + strings.TrimPrefix(c.phone, "+")
			}
			return f
		}},
		{"two-chars", func(r *rand.Rand) sqlite.CustomerFilter {
			// Two letters of a name or of an email's local part: below the trigram index, so the LIKE scan.
			f := scope()
			c := cbCustomerOf(fx.randomBigLive(r))
			src := strings.ToLower(c.first + c.last)
			if r.IntN(2) == 0 {
				src, _, _ = strings.Cut(c.email, "@")
			}
			for {
				f.Search = substring(r, src, 2)
				if strings.IndexFunc(f.Search, func(x rune) bool { return !unicode.IsLetter(x) }) < 0 {
					return f
				}
			}
		}},
		{"first-page", func(r *rand.Rand) sqlite.CustomerFilter { return scope() }},
		{"deep-cursor", func(r *rand.Rand) sqlite.CustomerFilter {
			// The page after the customer 5,000 either side of the middle of the big store's live list.
			f := scope()
			mid := len(fx.bigLive) / 2
			f.After = cbSeq(int(fx.bigLive[mid-5_000+r.IntN(10_001)]))
			return f
		}},
		{"page-mode", func(r *rand.Rand) sqlite.CustomerFilter {
			// ?page=200&page_size=15
			f := scope()
			f.Offset = 199 * 15
			return f
		}},
	}

	for i, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(uint64(i+1), 77))
			qs := make([]sqlite.CustomerFilter, b.N)
			for j := range qs {
				qs[j] = c.make(r)
			}
			lat := make([]time.Duration, 0, b.N)
			rows := 0
			b.ResetTimer()
			for j := range b.N {
				t0 := time.Now()
				out, _, err := st.ListCustomers(ctx, qs[j])
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				rows += len(out)
			}
			b.StopTimer()
			p := percentiles(lat)
			b.ReportMetric(p(0.50), "p50-ms")
			b.ReportMetric(p(0.99), "p99-ms")
			b.ReportMetric(p(1), "max-ms")
			b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
		})
	}
}

// The data set. Everything about customer c (0-based) follows from c alone: the queries find names,
// emails, phones and list positions without reading the store, and a cached store can be checked.
const (
	cbCustomers  = 300_000
	cbGenVersion = 1 // bump when the generator changes: it keys the cached file
)

const (
	cbBigStore   = "str_CustBenchBigShop000000" // 85% of the customers
	cbMidStore   = "str_CustBenchMidShop000000" // 10%
	cbSmallStore = "str_CustBenchSmallShop0000" // 5%
)

var (
	cbStores = []string{cbBigStore, cbMidStore, cbSmallStore}
	cbStart  = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	// cbStep spreads the registrations over two years (about 210 s apart), each with a jitter below the
	// step, so created_at rises with c as seq does.
	cbStep = int64(730*24*time.Hour/time.Microsecond) / cbCustomers

	// Very common fragments: a mail provider (about 30% of addresses), the example domain (8%), and
	// three letters in many names.
	cbCommonFragments = []string{"gmail", "gmail.com", "example.com", "mar", "ann"}
)

// Names from several languages, the most common first: picks favour the head of each list (see
// skewed), as real names do.
var cbFirstNames = strings.Fields(`Marie Jean Mohamed Aminata James Sophie Pierre Fatou Maria David Nathalie
	Michael Camille Moussa John Léa Isabelle Mamadou Sarah Thomas Emma Nicolas Julien Chloé Ibrahima Daniel
	Fatima Lucas Awa Emily Hugo Manon Oumar José Olivia Louis Adama Jessica Gabriel Kofi William Zoé Ana
	Mariama Robert Hélène Kwame Lucía Jérôme Ngozi François Aïcha Élodie Chinedu Mathieu Linda Abdoulaye
	Aurélie Youssef Céline Emeka Jennifer Antoine Seydou Patricia Sébastien Oluwaseun Charlotte Javier
	Yasmine Amelia Adebayo Carmen George Folake Harry Diego Karim Beatriz Jack Leila Sofía Lukas Yaw Anna
	João Felix Wei Jürgen Mei Katrin Priya Arjun Olga Ivan Hiroshi Yuki Alejandro Lena Elizabeth Oliver`)

var cbLastNames = strings.Fields(`Martin Diallo Smith Bernard Traoré Dubois Johnson García Koné Thomas
	Williams Robert Ndiaye Brown Richard Diop Petit Nguyen Durand Camara Jones Leroy Rodríguez Moreau Sow
	Miller Simon Touré Laurent Mensah Lefebvre Davis Coulibaly Michel Fernández Okafor Müller Wilson
	Keita Bertrand Cissé López Roux Asante Anderson Vincent Ouédraogo Fournier Taylor González Morel
	Owusu Girard Okonkwo Schmidt André Moore Pérez Lefèvre Adeyemi Mercier Jackson Sánchez Dupont
	Balogun Lambert White Bonnet Eze Harris Silva Kouassi Clark Santos Bamba Schneider Lewis Chen
	Konaté Walker Nwosu Oliveira Fischer Hall Kim Wang Young Singh Gonçalves Kumar Núñez Patel Weber Rossi
	Kowalski Ivanov Benali Haddad Yao Fall Sy Ba Hoffmann Esposito Ramírez Torres Wright Scott Adams`)

// Mail domains, each with its share of addresses in percent.
var cbDomains = []struct {
	name  string
	share int
}{
	{"gmail.com", 30}, {"yahoo.fr", 10}, {"hotmail.com", 10}, {"outlook.com", 8}, {"example.com", 8},
	{"yahoo.com", 7}, {"orange.fr", 7}, {"icloud.com", 7}, {"gmx.de", 5}, {"proton.me", 4}, {"free.fr", 4},
}

type cbCustomer struct {
	id, store, mode    string
	first, last, email string
	phone, country     string // phone in E.164, or ""
	at                 int64  // created_at, unix microseconds
	source             string // api or checkout
	domainIdx          int
}

// skewed picks an index below n, favouring small ones (density falling from the head to the tail).
func skewed(h uint64, n int) int {
	u := float64(h%1_000_003) / 1_000_003
	return int(u * u * float64(n))
}

var cbASCII = strings.NewReplacer("à", "a", "â", "a", "ä", "a", "á", "a", "ç", "c", "é", "e", "è", "e", "ê", "e", "ë", "e",
	"í", "i", "î", "i", "ï", "i", "ñ", "n", "ó", "o", "ô", "o", "ö", "o", "ú", "u", "ù", "u", "û", "u", "ü", "u", " ", "")

// cbCustomerOf is customer c: its scope, names, address, phone and registration time. Stores and modes
// are interleaved over time, as every store keeps registering customers: 85% big store, 10% mid, 5%
// small; one in ten in test mode. Emails are <first>.<last><c>@<domain> (c makes them unique), some
// written <first><last>, <f><last>, <first>_<last> or <last>.<first>; three in five have a phone.
func cbCustomerOf(c int) cbCustomer {
	h := mix64(uint64(c) ^ 0x2545f4914f6cdd1d)
	h2 := mix64(h)
	out := cbCustomer{id: id22("cus_", uint64(c)<<1), mode: events.ModeLive, source: "checkout"}
	switch p := h % 100; {
	case p < 85:
		out.store = cbBigStore
	case p < 95:
		out.store = cbMidStore
	default:
		out.store = cbSmallStore
	}
	if (h>>8)%10 == 0 {
		out.mode = events.ModeTest
	}
	if (h>>12)%4 == 0 {
		out.source = "api"
	}
	out.first = cbFirstNames[skewed(h>>16, len(cbFirstNames))]
	out.last = cbLastNames[skewed(h2, len(cbLastNames))]
	first, last := cbASCII.Replace(strings.ToLower(out.first)), cbASCII.Replace(strings.ToLower(out.last))
	var local string
	switch p := (h2 >> 24) % 100; {
	case p < 60:
		local = first + "." + last
	case p < 75:
		local = first + last
	case p < 85:
		local = first[:1] + last
	case p < 95:
		local = first + "_" + last
	default:
		local = last + "." + first
	}
	d := int((h2 >> 32) % 100)
	for i, dom := range cbDomains {
		if d < dom.share {
			out.domainIdx = i
			break
		}
		d -= dom.share
	}
	out.email = fmt.Sprintf("%s%d@%s", local, c, cbDomains[out.domainIdx].name)
	if (h2>>40)%5 < 3 {
		out.phone, out.country = cbPhone(mix64(h2 ^ 0x9e3779b97f4a7c15))
	}
	out.at = cbStart.UnixMicro() + int64(c)*cbStep + int64((h>>40)%uint64(cbStep))
	return out
}

// cbPhone is a plausible mobile number: France, the US, the UK, Nigeria, Côte d'Ivoire, Senegal or
// Germany.
func cbPhone(h uint64) (phone, country string) {
	digits := func(n int) string {
		var sb strings.Builder
		for range n {
			sb.WriteByte(byte('0' + h%10))
			h /= 10
		}
		return sb.String()
	}
	pick := func(opts ...string) string {
		s := opts[h%uint64(len(opts))]
		h /= uint64(len(opts))
		return s
	}
	switch c := h % 100; {
	case c < 30:
		h /= 100
		return "+33" + pick("6", "7") + digits(8), "FR"
	case c < 45:
		h /= 100
		return "+1" + pick("212", "310", "415", "512", "646", "718", "917") + pick("2", "4", "5", "7", "8") + digits(6), "US"
	case c < 55:
		h /= 100
		return "+447" + digits(9), "GB"
	case c < 70:
		h /= 100
		return "+234" + pick("70", "80", "81", "90", "91") + digits(8), "NG"
	case c < 82:
		h /= 100
		return "+225" + pick("01", "05", "07") + digits(8), "CI"
	case c < 92:
		h /= 100
		return "+221" + pick("70", "76", "77", "78") + digits(7), "SN"
	default:
		h /= 100
		return "+49" + pick("151", "160", "170", "176") + digits(8), "DE"
	}
}

// cbSeq is customer c's seq (the rowid, the list order): the fold inserts customers in log order into
// a table nothing is deleted from, so c+1. The cache check verifies it.
func cbSeq(c int) int64 { return int64(c) + 1 }

// substring is n characters of s from a random place (all of s if it is shorter).
func substring(r *rand.Rand, s string, n int) string {
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	i := r.IntN(len(rs) - n + 1)
	return string(rs[i : i+n])
}

// mixCase writes s as people type it: lower case, capitalised or upper case.
func mixCase(r *rand.Rand, s string) string {
	switch r.IntN(3) {
	case 0:
		return strings.ToLower(s)
	case 1:
		first, size := utf8.DecodeRuneInString(s)
		return string(unicode.ToUpper(first)) + strings.ToLower(s[size:])
	default:
		return strings.ToUpper(s)
	}
}

// cbLog generates the whole log in batches of benchBatch events with sequences 1, 2, …: the three
// stores, then one customer_registered per customer. It returns the last sequence.
func cbLog(yield func([]events.Envelope) error) (uint64, error) {
	var seq uint64
	batch := make([]events.Envelope, 0, benchBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		for i := range batch {
			seq++
			batch[i].Sequence = seq
		}
		err := yield(batch)
		batch = make([]events.Envelope, 0, benchBatch)
		return err
	}
	for i, id := range cbStores {
		batch = append(batch, events.Envelope{
			Aggregate: events.Aggregate{Mode: events.ModePlatform, StoreID: id, Type: events.AggregateStore, ID: id},
			Time:      cbStart.Add(-time.Hour),
			Payload: events.StoreCreated{StoreID: id, Name: "Shop " + id[4:17], Slug: strings.ToLower(id[4:17]), ServiceFeePercent: "5",
				SettlementDelayDays: 7, AbandonAfterMinutes: 30, Keys: []events.APIKey{
					{Mode: events.ModeLive, Hash: fmt.Sprintf("%064x", 2*i+101), Prefix: "sk_live_", Last4: fmt.Sprintf("%04d", 2*i+101)},
					{Mode: events.ModeTest, Hash: fmt.Sprintf("%064x", 2*i+102), Prefix: "sk_test_", Last4: fmt.Sprintf("%04d", 2*i+102)},
				}},
		})
	}
	for c := range cbCustomers {
		cu := cbCustomerOf(c)
		batch = append(batch, events.Envelope{
			Aggregate: events.Aggregate{Mode: cu.mode, StoreID: cu.store, Type: events.AggregateCustomer, ID: cu.id},
			Time:      time.UnixMicro(cu.at).UTC(),
			Payload: events.CustomerRegistered{CustomerID: cu.id, Source: cu.source, CustomerData: events.CustomerData{
				Email: cu.email, FirstName: cu.first, LastName: cu.last, Phone: cu.phone, Country: cu.country}},
		})
		if len(batch) == benchBatch {
			if err := flush(); err != nil {
				return seq, err
			}
		}
	}
	return seq, flush()
}

// customersFixture is the built store plus what the queries need to know about its contents.
type customersFixture struct {
	store     *sqlite.Store
	path      string
	lastSeq   uint64
	bigLive   []int32 // customers of the big store's live mode, oldest first
	withPhone []int32 // those of them with a phone
}

var (
	cbFixtureOnce sync.Once
	cbFixture     *customersFixture
	cbFixtureErr  error
)

func loadCustomersFixture(b *testing.B) *customersFixture {
	b.Helper()
	cbFixtureOnce.Do(func() { cbFixture, cbFixtureErr = buildCustomersFixture(b) })
	if cbFixtureErr != nil {
		b.Fatal(cbFixtureErr)
	}
	return cbFixture
}

func buildCustomersFixture(b *testing.B) (*customersFixture, error) {
	fx := &customersFixture{}
	for c := range cbCustomers {
		cu := cbCustomerOf(c)
		if cu.store == cbBigStore && cu.mode == events.ModeLive {
			fx.bigLive = append(fx.bigLive, int32(c))
			if cu.phone != "" {
				fx.withPhone = append(fx.withPhone, int32(c))
			}
		}
	}
	for _, c := range fx.bigLive[:3] {
		cu := cbCustomerOf(int(c))
		b.Logf("sample customer: %s %q %q %s %q", cu.id, cu.first+" "+cu.last, cu.email, cu.phone, cu.source)
	}
	var err error
	if fx.lastSeq, err = cbLog(func([]events.Envelope) error { return nil }); err != nil {
		return nil, err
	}
	fx.path = filepath.Join(os.TempDir(), fmt.Sprintf("ledger-bench-customers-%d-schema%d-gen%d.db", cbCustomers, sqlite.SchemaVersion, cbGenVersion))
	fx.store, err = openCachedStore(b, fx.path, func() string { return fx.cacheInvalid(b) }, func() error { return fx.build(b) },
		fmt.Sprintf("%d customers, search index, checkpoint %d", cbCustomers, fx.lastSeq))
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(fx.path); err == nil {
		b.Logf("store file: %.1f MB; big store live mode: %d customers, %d with a phone", float64(fi.Size())/1e6, len(fx.bigLive), len(fx.withPhone))
	}
	return fx, nil
}

// cacheInvalid says why the cached file cannot be used, or "" if it can: it must exist, have the
// current SchemaVersion and exactly a fresh store's schema, all the customers in the table and in the
// search index, the log's last sequence as checkpoint, and spot-checked customers at their seq.
func (fx *customersFixture) cacheInvalid(b *testing.B) string {
	db, why := openCacheToCheck(b, fx.path)
	if why != "" {
		return why
	}
	defer db.Close()
	var count, indexed int
	var seq uint64
	if err := db.QueryRow(`SELECT count(*) FROM customers`).Scan(&count); err != nil || count != cbCustomers {
		return fmt.Sprintf("%d customers (%v), want %d", count, err, cbCustomers)
	}
	if err := db.QueryRow(`SELECT count(*) FROM customers_fts`).Scan(&indexed); err != nil || indexed != cbCustomers {
		return fmt.Sprintf("%d customers in the search index (%v), want %d", indexed, err, cbCustomers)
	}
	if err := db.QueryRow(`SELECT seq FROM checkpoint WHERE id = 1`).Scan(&seq); err != nil || seq != fx.lastSeq {
		return fmt.Sprintf("checkpoint %d (%v), want %d", seq, err, fx.lastSeq)
	}
	for _, c := range []int{0, int(fx.bigLive[len(fx.bigLive)/2]), cbCustomers - 1} {
		cu := cbCustomerOf(c)
		var gotSeq int64
		var email string
		if err := db.QueryRow(`SELECT seq, email FROM customers WHERE id = ?`, cu.id).Scan(&gotSeq, &email); err != nil ||
			gotSeq != cbSeq(c) || email != cu.email {
			return fmt.Sprintf("customer %s is seq %d %q (%v), want %d %q", cu.id, gotSeq, email, err, cbSeq(c), cu.email)
		}
	}
	return ""
}

// build folds the whole log into a new file next to the cache with the production settings, and
// renames it into place when done, so an interrupted build never leaves a half-built cache behind.
func (fx *customersFixture) build(b *testing.B) error {
	tmp := fmt.Sprintf("%s.building-%d", fx.path, os.Getpid())
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(tmp + suffix)
		os.Remove(fx.path + suffix)
	}
	st, err := sqlite.Open(tmp)
	if err != nil {
		return err
	}
	ctx := context.Background()
	start := time.Now()
	var applied, batches int
	_, err = cbLog(func(batch []events.Envelope) error {
		if err := st.Apply(ctx, batch); err != nil {
			return err
		}
		applied += len(batch)
		if batches++; batches%20 == 0 {
			b.Logf("  … %d events in %s", applied, time.Since(start).Round(time.Second))
		}
		return nil
	})
	if err != nil {
		st.Close()
		return err
	}
	took := time.Since(start)
	if err := st.Close(); err != nil {
		return err
	}
	b.Logf("build: %d customers, %d events applied in %d batches of up to %d in %s (%.0f events/s; generating the events included)",
		cbCustomers, applied, batches, benchBatch, took.Round(time.Millisecond), float64(applied)/took.Seconds())
	if _, err := os.Stat(tmp + "-wal"); err == nil {
		db, err := sql.Open("sqlite", "file:"+tmp)
		if err != nil {
			return err
		}
		_, err = db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
		db.Close()
		if err != nil {
			return err
		}
		os.Remove(tmp + "-wal")
		os.Remove(tmp + "-shm")
	}
	return os.Rename(tmp, fx.path)
}

func (fx *customersFixture) randomBigLive(r *rand.Rand) int {
	return int(fx.bigLive[r.IntN(len(fx.bigLive))])
}

// cbListSQL is the query ListCustomers builds, for EXPLAIN QUERY PLAN.
func cbListSQL(f sqlite.CustomerFilter) (string, []any) { return sqlite.ListCustomersQuery(f) }

// logPlans logs EXPLAIN QUERY PLAN and a timing for each benchmarked shape, with typical parameters,
// and for worst cases and combinations the handler also accepts. The timing is the median of three
// ListCustomers calls after one that warms the caches, or that one call if it takes over a second. It
// flags plans that sort (USE TEMP B-TREE) or scan (a table, or the search index whole, or the search
// probed once per customer) and timings over 20 ms. For every search of three characters or more it
// checks that the query explained returns what ListCustomers returns.
func (fx *customersFixture) logPlans(b *testing.B) {
	db, err := sql.Open("sqlite", "file:"+fx.path+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	base := sqlite.CustomerFilter{StoreID: cbBigStore, Mode: events.ModeLive, Limit: 15}
	cu := cbCustomerOf(int(fx.bigLive[len(fx.bigLive)/3]))
	phoned := cbCustomerOf(int(fx.withPhone[len(fx.withPhone)/3]))
	lastName := string([]rune(cu.last)[:3])
	// The name part of an address ("fatou.martin"): dozens to hundreds of matches, so a second page.
	local, _, _ := strings.Cut(cu.email, "@")
	local = strings.TrimRight(local, "0123456789")
	mid := cbSeq(int(fx.bigLive[len(fx.bigLive)/2]))
	early := cbSeq(10_000) // about 7,650 of the big store's live customers are older
	yearAgo := cbStart.AddDate(1, 0, 0)
	month := func(f *sqlite.CustomerFilter) {
		f.From, f.To = yearAgo, yearAgo.AddDate(0, 1, 0).Add(-time.Microsecond)
	}
	// nextCursor is the next_cursor of a search's first page: the seq of its last row.
	nextCursor := func(search string) int64 {
		f := base
		f.Search = search
		rows, _, err := fx.store.ListCustomers(ctx, f)
		if err != nil || len(rows) < f.Limit {
			b.Fatalf("search %q: %d rows (%v); want a full first page", search, len(rows), err)
		}
		return rows[len(rows)-1].Seq
	}
	type shape struct {
		name string
		kind string // benchmarked: the shape of a sub-benchmark; other: a worst case or combination
		mod  func(*sqlite.CustomerFilter)
	}
	shapes := []shape{
		{fmt.Sprintf("email-fragment %q", cu.email[3:9]), "benchmarked", func(f *sqlite.CustomerFilter) { f.Search = cu.email[3:9] }},
		{fmt.Sprintf("name-fragment %q", lastName), "benchmarked", func(f *sqlite.CustomerFilter) { f.Search = lastName }},
		{`common-fragment "gmail"`, "benchmarked", func(f *sqlite.CustomerFilter) { f.Search = "gmail" }},
		{`common-fragment "example.com"`, "benchmarked", func(f *sqlite.CustomerFilter) { f.Search = "example.com" }},
		{`common-fragment "mar"`, "benchmarked", func(f *sqlite.CustomerFilter) { f.Search = "mar" }},
		{fmt.Sprintf("phone-digits %q", phoned.phone[4:10]), "benchmarked", func(f *sqlite.CustomerFilter) { f.Search = phoned.phone[4:10] }},
		{`two-chars "ma"`, "benchmarked", func(f *sqlite.CustomerFilter) { f.Search = "ma" }},
		{"first-page", "benchmarked", func(f *sqlite.CustomerFilter) {}},
		{"deep-cursor", "benchmarked", func(f *sqlite.CustomerFilter) { f.After = mid }},
		{"page-mode (page 200 of 15)", "benchmarked", func(f *sqlite.CustomerFilter) { f.Offset = 199 * 15 }},
		{`two-chars "qz" (no match)`, "other", func(f *sqlite.CustomerFilter) { f.Search = "qz" }},
		{`search "zqxw" (no match)`, "other", func(f *sqlite.CustomerFilter) { f.Search = "zqxw" }},
		{`search "gmail" + cursor at seq 10,000`, "other", func(f *sqlite.CustomerFilter) { f.Search, f.After = "gmail", early }},
		{fmt.Sprintf("search %q + cursor at seq 10,000", local), "other", func(f *sqlite.CustomerFilter) { f.Search, f.After = local, early }},
		{fmt.Sprintf("search %q + its next_cursor (page 2)", local), "other", func(f *sqlite.CustomerFilter) {
			f.Search, f.After = local, nextCursor(local)
		}},
		{`search "gmail" + its next_cursor (page 2)`, "other", func(f *sqlite.CustomerFilter) { f.Search, f.After = "gmail", nextCursor("gmail") }},
		{`search "gmail" + prev_cursor at mid`, "other", func(f *sqlite.CustomerFilter) { f.Search, f.Before = "gmail", mid }},
		{`search "gmail" + month a year back`, "other", func(f *sqlite.CustomerFilter) { f.Search = "gmail"; month(f) }},
		{"month a year back", "other", month},
		{"prev-page (Before)", "other", func(f *sqlite.CustomerFilter) { f.Before = mid }},
		{"page-mode (page 5000 of 15)", "other", func(f *sqlite.CustomerFilter) { f.Offset = 4999 * 15 }},
	}
	explain := func(q string, args []any) string {
		rows, err := db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			b.Fatal(err)
		}
		defer rows.Close()
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				b.Fatal(err)
			}
			plan = append(plan, detail)
		}
		return strings.Join(plan, "; ")
	}
	// timed runs call once, and twice more if it took under a second, and returns the rows of the
	// first call and the median time.
	timed := func(call func() ([]int64, error)) ([]int64, time.Duration) {
		t0 := time.Now()
		first, err := call()
		took := []time.Duration{time.Since(t0)}
		if err != nil {
			b.Fatal(err)
		}
		if took[0] < time.Second {
			took = took[:0]
			for range 3 {
				t0 := time.Now()
				if _, err := call(); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(t0))
			}
		}
		slices.Sort(took)
		return first, took[len(took)/2]
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	var flagged []string
	for _, sh := range shapes {
		f := base
		sh.mod(&f)
		q, args := cbListSQL(f)
		p := explain(q, args)
		trim := func(seqs []int64) []int64 {
			if len(seqs) > f.Limit {
				seqs = seqs[:f.Limit]
			}
			if f.Before > 0 {
				slices.Reverse(seqs)
			}
			return seqs
		}

		var got []int64
		line := ""
		{
			var median time.Duration
			got, median = timed(func() ([]int64, error) {
				rows, _, err := fx.store.ListCustomers(ctx, f)
				seqs := make([]int64, len(rows))
				for i, r := range rows {
					seqs[i] = r.Seq
				}
				return seqs, err
			})
			// The copy must select what ListCustomers does (skipped where that would take another minute).
			if median < time.Second {
				want, err := cbSeqsOf(ctx, db, q, args)
				if err != nil {
					b.Fatal(err)
				}
				if want = trim(want); !slices.Equal(got, want) {
					b.Fatalf("shape %s: cbListSQL returns %v, ListCustomers %v: the copy is out of step", sh.name, want, got)
				}
			}
			var verdict []string
			if strings.Contains(p, "TEMP B-TREE") {
				verdict = append(verdict, "SORTS")
			}
			if strings.Contains(p, "SCAN c") || strings.Contains(p, "VIRTUAL TABLE INDEX 0:") || strings.Contains(p, ":=M") {
				verdict = append(verdict, "SCANS")
			}
			if median > 20*time.Millisecond {
				verdict = append(verdict, "OVER 20 ms")
			}
			if len(verdict) == 0 {
				verdict = append(verdict, "ok")
			} else {
				flagged = append(flagged, sh.name)
			}
			line = fmt.Sprintf("%-11s %8.2f ms %3d rows  %s: %s", sh.kind, ms(median), len(got), strings.Join(verdict, ", "), p)
		}
		b.Logf("plan %-48s %s", sh.name, line)

	}
	if len(flagged) > 0 {
		b.Logf("PLAN CHECK: %d of %d shapes flagged: %s", len(flagged), len(shapes), strings.Join(flagged, "; "))
	} else {
		b.Logf("PLAN CHECK: every shape is an index search, no sort, under 20 ms")
	}
}

// cbSeqsOf runs a cbListSQL query and returns the seqs of its rows, in order.
func cbSeqsOf(ctx context.Context, db *sql.DB, q string, args []any) ([]int64, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var seqs []int64
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		seq, ok := vals[0].(int64)
		if !ok {
			return nil, fmt.Errorf("seq is %T", vals[0])
		}
		seqs = append(seqs, seq)
	}
	return seqs, rows.Err()
}
