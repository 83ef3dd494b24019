package jetstream

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// Accounts of the embedded server. NATS accounts are isolated subject spaces: the ledger's streams, buckets
// and inboxes live in LedgerAccount, and each reader role has an account of its own that reaches into it
// only through imports, which the ledger exports one API subject at a time.
//
// The boundary matters for replies. Inside one account, whoever may send a JetStream API request chooses
// where the server's answer goes, and an answer sent to a subject of a stream is stored in that stream:
// a reader sending "$JS.API.INFO" with the reply subject "ledger.live.….payment_succeeded" would append
// the server's JSON to the log (nats-server applies no permission to its own answers). Across an import
// the server rewrites the reply subject to a private "_R_" subject of the exporting account and carries
// the answer back into the importer's account, where no stream listens. Push consumers are the same
// problem once more — a push consumer delivers events wherever its deliver subject says, with the
// server's rights — so consumers are made only through the ledger's gate (ConsumerGate), which refuses
// deliver subjects outside the role's own inbox.
const (
	// LedgerAccount holds the ledger's own connections, the LEDGER stream and the buckets.
	LedgerAccount = "LEDGER"
	// AnalyticsAccount holds the analytics user.
	AnalyticsAccount = "ANALYTICS"
	// OperatorAccount holds the operator tools' NKey.
	OperatorAccount = "OPERATOR"
)

// gatePrefix is the subject space, in LedgerAccount, where ConsumerGate answers the consumer API of the
// reader roles: gatePrefix.<role>.<API subject without "$JS."> (e.g. "_ledger_gate.analytics.API.CONSUMER.
// CREATE.LEDGER.analytics_x"). Only the role's own account can reach its part, through imports.
const gatePrefix = "_ledger_gate"

// A Role is a reader of the ledger's streams from an account of its own.
type Role struct {
	// Name is the role's token in gate subjects ("analytics", "operator").
	Name string
	// Account is the role's NATS account.
	Account string
	// Streams are the streams it reads.
	Streams []string
	// ConsumerPrefix, if set, is how the names of the consumers it may create, inspect, delete, pull from
	// and acknowledge begin ("analytics_"). Empty: any name but a reserved one.
	ConsumerPrefix string
	// DeliverPrefix, if set, is where its push consumers may deliver (its inbox prefix and a dot); empty:
	// pull consumers only.
	DeliverPrefix string
	// InspectReserved lets it read (never pull from or change) the state of the ledger's own consumers,
	// by their well-known names (PaymentsDurable).
	InspectReserved bool
	// MaxConsumers bounds how many consumers with ConsumerPrefix may exist at once (0: no bound; needs
	// ConsumerPrefix). Every consumer costs the server memory and a timer, and JetStream's own limits are
	// per account, where the ledger's consumers live too.
	MaxConsumers int
	// Extra are further API subjects it may request directly (e.g. "$JS.API.STREAM.NAMES").
	Extra []string
}

// MaxAnalyticsConsumers is how many analytics_ consumers may exist at once.
const MaxAnalyticsConsumers = 64

// AnalyticsRole reads LEDGER through pull consumers named analytics_…, at most MaxAnalyticsConsumers of them.
var AnalyticsRole = Role{
	Name: "analytics", Account: AnalyticsAccount, Streams: []string{StreamName},
	ConsumerPrefix: "analytics_", MaxConsumers: MaxAnalyticsConsumers,
}

// OperatorRole reads LEDGER, the data-subject keys and the photos (push consumers delivering to
// OperatorInboxPrefix included: nats.go watches buckets and reads objects through them), may list the
// streams and may look at the ledger's own consumers.
var OperatorRole = Role{
	Name: "operator", Account: OperatorAccount,
	Streams:       []string{StreamName, "KV_" + KeysBucket, "OBJ_" + PhotosBucket},
	DeliverPrefix: OperatorInboxPrefix + ".", InspectReserved: true,
	Extra: []string{"$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST"},
}

// roleImport is one subject a role reaches in LedgerAccount: local in the role's account, remote in
// LedgerAccount (where the export is).
type roleImport struct {
	local, remote string
	stream        bool // answered with many messages (pulls)
}

// imports lists what the role imports: stream reads straight from JetStream (their answers can only go
// back to the role), consumer operations through the gate.
func (r Role) imports() []roleImport {
	var out []roleImport
	direct := func(subj string) { out = append(out, roleImport{local: subj, remote: subj}) }
	gate := func(subj string) {
		out = append(out, roleImport{local: subj, remote: gatePrefix + "." + r.Name + "." + strings.TrimPrefix(subj, "$JS.")})
	}
	for _, s := range r.Streams {
		direct("$JS.API.STREAM.INFO." + s)
		direct("$JS.API.STREAM.MSG.GET." + s)
		direct("$JS.API.DIRECT.GET." + s)
		direct("$JS.API.DIRECT.GET." + s + ".>")
		gate("$JS.API.CONSUMER.CREATE." + s)
		gate("$JS.API.CONSUMER.CREATE." + s + ".>")
		gate("$JS.API.CONSUMER.DURABLE.CREATE." + s + ".*")
		gate("$JS.API.CONSUMER.INFO." + s + ".*")
		gate("$JS.API.CONSUMER.DELETE." + s + ".*")
		// Pulls and acknowledgements go to JetStream itself: only its own delivery keeps the events'
		// subjects on the way back through the import. They name the consumer, and a reader can name
		// only its own (reservedConsumer).
		out = append(out, roleImport{local: "$JS.API.CONSUMER.MSG.NEXT." + s + ".*", remote: "$JS.API.CONSUMER.MSG.NEXT." + s + ".*", stream: true})
		direct("$JS.ACK." + s + ".>")
		if r.DeliverPrefix != "" {
			direct("$JS.FC." + s + ".>")
		}
	}
	// An account without JetStream of its own otherwise imports the whole JetStream API from the system
	// account, to answer "not enabled"; importing $JS.API.INFO from the ledger's account keeps it from
	// doing so (nats-server: enableJetStreamInfoServiceImportOnly), and tells the role the ledger
	// account's usage.
	direct("$JS.API.INFO")
	for _, s := range r.Extra {
		direct(s)
	}
	return out
}

// publishAllow is the role's user permission to publish: exactly its imports (defence in depth: the
// imports are all the account can reach anyway).
func (r Role) publishAllow() []string {
	var out []string
	for _, im := range r.imports() {
		out = append(out, im.local)
	}
	return out
}

// Permissions is the role's user permissions: publish to its imports, subscribe under its inbox prefix.
func (r Role) Permissions(inbox string) *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: r.publishAllow()},
		Subscribe: &server.SubjectPermission{Allow: []string{inbox + ".>"}},
	}
}

// configureAccounts puts the ledger's users in LedgerAccount and each role's users in the role's account,
// wired to the ledger's by exports and imports, on opts (before the server is made).
func configureAccounts(opts *server.Options, cfg EmbeddedConfig) error {
	// An account's JetStream can be switched on only through configuration (or at run time); the rest is
	// done on the parsed accounts.
	if err := opts.ProcessConfigString(fmt.Sprintf("accounts { %s { jetstream: enabled }, %s {}, %s {} }",
		LedgerAccount, AnalyticsAccount, OperatorAccount)); err != nil {
		return fmt.Errorf("embedded nats-server accounts: %w", err)
	}
	acc := map[string]*server.Account{}
	for _, a := range opts.Accounts {
		acc[a.Name] = a
	}
	ledger := acc[LedgerAccount]
	type export struct {
		accounts []*server.Account
		stream   bool
	}
	exports := map[string]*export{}
	roles := []Role{AnalyticsRole, OperatorRole}
	for _, r := range roles {
		for _, im := range r.imports() {
			e := exports[im.remote]
			if e == nil {
				e = &export{}
				exports[im.remote] = e
			}
			e.accounts = append(e.accounts, acc[r.Account])
			e.stream = e.stream || im.stream
		}
	}
	for _, subj := range slices.Sorted(maps.Keys(exports)) {
		e := exports[subj]
		rt := server.Singleton
		if e.stream {
			rt = server.Streamed
		}
		if err := ledger.AddServiceExportWithResponse(subj, rt, e.accounts); err != nil {
			return fmt.Errorf("export %s: %w", subj, err)
		}
	}
	// The operator's push consumers deliver into its inbox prefix in the ledger's account.
	op := acc[OperatorAccount]
	if err := ledger.AddStreamExport(OperatorInboxPrefix+".>", []*server.Account{op}); err != nil {
		return fmt.Errorf("export %s: %w", OperatorInboxPrefix, err)
	}
	if err := op.AddStreamImport(ledger, OperatorInboxPrefix+".>", ""); err != nil {
		return fmt.Errorf("import %s: %w", OperatorInboxPrefix, err)
	}
	for _, r := range roles {
		for _, im := range r.imports() {
			if err := acc[r.Account].AddServiceImport(ledger, im.local, im.remote); err != nil {
				return fmt.Errorf("import %s into %s: %w", im.remote, r.Account, err)
			}
		}
	}
	for _, u := range cfg.Nkeys {
		u.Account = ledger
	}
	for _, u := range cfg.Users {
		u.Account = ledger
	}
	for _, u := range cfg.Operators {
		u.Account, u.Permissions = op, OperatorRole.Permissions(OperatorInboxPrefix)
	}
	for _, u := range cfg.Analytics {
		u.Account, u.Permissions = acc[AnalyticsAccount], AnalyticsRole.Permissions("_INBOX")
	}
	opts.Nkeys = append(slices.Clone(cfg.Nkeys), cfg.Operators...)
	opts.Users = append(slices.Clone(cfg.Users), cfg.Analytics...)
	return nil
}

// migrateGlobalAccount moves streams the ledger kept in NATS's global account (before LedgerAccount
// existed) to LedgerAccount's directory, where the server looks for them now. JetStream keeps an
// account's streams in <store>/jetstream/<account>; nothing inside the files names the account.
func migrateGlobalAccount(storeDir string) error {
	old := filepath.Join(storeDir, "jetstream", "$G")
	now := filepath.Join(storeDir, "jetstream", LedgerAccount)
	if _, err := os.Stat(old); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if _, err := os.Stat(now); err == nil {
		return fmt.Errorf("both %s and %s exist: the data dir holds streams of two layouts; move one away", old, now)
	}
	if err := os.Rename(old, now); err != nil {
		return fmt.Errorf("move the streams to the ledger's account: %w", err)
	}
	return nil
}
