package jetstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerGate answers the consumer API of the reader roles (Role) on the embedded server: creating,
// inspecting and deleting consumers. Each role's account imports those subjects from the gate rather than
// from JetStream (accounts.go), and the gate passes on to JetStream, and the answer back, only what the
// role may do:
//
//   - a consumer of one of the role's streams, named with its ConsumerPrefix (if any) and never a
//     reserved one (whose state InspectReserved roles may still read, by its well-known name);
//   - pull consumers, or push consumers delivering under the role's DeliverPrefix — never to another
//     subject of the ledger's account, where a push consumer would write with the server's rights (into a
//     bucket, or to the JetStream API: "$JS.API.CONSUMER.DELETE.LEDGER.payments");
//   - at most MaxConsumers consumers with the prefix at once.
//
// Refusals are answered as JetStream answers an error (code 403 and a description), so clients report
// them as they report the server's own.
type ConsumerGate struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	log  *slog.Logger
	subs []*nats.Subscription
	// aliases maps the well-known names of reserved consumers to their real ones.
	aliases map[string]string
}

// gateRequestTimeout bounds a create passed on to JetStream (the gate waits for it to count consumers
// exactly).
const gateRequestTimeout = 10 * time.Second

// The queue of requests each gate subscription keeps (messages, bytes).
const (
	gatePendingMsgs  = 256
	gatePendingBytes = 8 << 20
)

// ServeConsumerGate starts the gate for roles on nc, a connection of the ledger's own in LedgerAccount kept
// for the gate (a reader flooding it then slows only that connection, not the ledger's writes). Close
// stops it. aliases maps well-known consumer names to real ones (PaymentsDurable to Store.PaymentsConsumer's name),
// for the roles that may inspect reserved consumers.
func ServeConsumerGate(nc *nats.Conn, log *slog.Logger, aliases map[string]string, roles ...Role) (*ConsumerGate, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	g := &ConsumerGate{nc: nc, js: js, log: log, aliases: aliases}
	for _, r := range roles {
		var createMu sync.Mutex // creates of one role one at a time, so the count holds
		create := func(m *nats.Msg) {
			createMu.Lock()
			defer createMu.Unlock()
			g.create(r, m)
		}
		base := gatePrefix + "." + r.Name + "."
		for subj, h := range map[string]nats.MsgHandler{
			base + "API.CONSUMER.CREATE.>":  create,
			base + "API.CONSUMER.DURABLE.>": create,
			base + "API.CONSUMER.INFO.>":    func(m *nats.Msg) { g.pass(r, m, r.InspectReserved) },
			base + "API.CONSUMER.DELETE.>":  func(m *nats.Msg) { g.pass(r, m, false) },
		} {
			sub, err := nc.Subscribe(subj, h)
			if err != nil {
				g.Close()
				return nil, fmt.Errorf("consumer gate %s: %w", subj, err)
			}
			// A flood waits in a short queue and the rest is dropped (the requester times out): the
			// gate's memory stays bounded whatever a reader sends.
			_ = sub.SetPendingLimits(gatePendingMsgs, gatePendingBytes)
			g.subs = append(g.subs, sub)
		}
	}
	if err := nc.Flush(); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

// Close stops answering.
func (g *ConsumerGate) Close() error {
	for _, s := range g.subs {
		_ = s.Unsubscribe()
	}
	return nil
}

// gateTarget parses a gate subject: the JetStream subject it stands for, the stream and the consumer
// named in it ("" when the subject names none, as an ephemeral create may).
func gateTarget(r Role, subject string) (target, stream, consumer string, ok bool) {
	rest, ok := strings.CutPrefix(subject, gatePrefix+"."+r.Name+".")
	if !ok {
		return "", "", "", false
	}
	t := strings.Split(rest, ".")
	at := func(i int) string {
		if i < len(t) {
			return t[i]
		}
		return ""
	}
	switch {
	case at(0) == "ACK" || at(0) == "FC": // ACK.<stream>.<consumer>.…
		stream, consumer = at(1), at(2)
	case at(2) == "DURABLE": // API.CONSUMER.DURABLE.CREATE.<stream>.<consumer>
		stream, consumer = at(4), at(5)
	case at(2) == "MSG": // API.CONSUMER.MSG.NEXT.<stream>.<consumer>
		stream, consumer = at(4), at(5)
	default: // API.CONSUMER.{CREATE,INFO,DELETE}.<stream>[.<consumer>[.<filter>…]]
		stream, consumer = at(3), at(4)
	}
	return "$JS." + rest, stream, consumer, slices.Contains(r.Streams, stream)
}

// allowed says why r may not use the consumer named (nil if it may).
func (r Role) allowed(stream, consumer string, inspect bool) error {
	if reservedConsumer(consumer) && !inspect {
		return fmt.Errorf("consumer %s belongs to the ledger", consumer)
	}
	if r.ConsumerPrefix != "" && !strings.HasPrefix(consumer, r.ConsumerPrefix) {
		return fmt.Errorf("the %s user's consumers are named %s…", r.Name, r.ConsumerPrefix)
	}
	return nil
}

// pass forwards a consumer operation that names its consumer in the subject (info, delete), and the answer
// back. A reserved consumer's alias (its well-known name) stands for its real name, which the answer does
// not tell.
func (g *ConsumerGate) pass(r Role, m *nats.Msg, inspect bool) {
	target, stream, consumer, ok := gateTarget(r, m.Subject)
	if !ok {
		g.refuse(m, r, fmt.Errorf("stream %q is not the %s user's to read", stream, r.Name))
		return
	}
	if err := r.allowed(stream, consumer, inspect); err != nil {
		g.refuse(m, r, err)
		return
	}
	if !inspect {
		if err := g.notTheirs(r, stream, consumer); err != nil {
			g.refuse(m, r, err)
			return
		}
	}
	actual, aliased := g.aliases[consumer]
	if aliased {
		target = strings.TrimSuffix(target, consumer) + actual
	}
	ctx, cancel := context.WithTimeout(context.Background(), gateRequestTimeout)
	defer cancel()
	resp, err := g.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: target, Header: forwardHeader(m), Data: m.Data})
	if err != nil {
		g.refuseCode(m, r, 503, fmt.Errorf("jetstream did not answer: %v", err))
		return
	}
	data := resp.Data
	if aliased {
		data = bytes.ReplaceAll(data, []byte(`"`+actual+`"`), []byte(`"`+consumer+`"`))
	}
	_ = m.RespondMsg(&nats.Msg{Header: resp.Header, Data: data})
}

// create checks a consumer create request (JetStream's own request type, decoded as the server decodes
// it) and passes it on, waiting for the answer so that the count of the role's consumers is exact.
func (g *ConsumerGate) create(r Role, m *nats.Msg) {
	target, stream, consumer, ok := gateTarget(r, m.Subject)
	if !ok {
		g.refuse(m, r, fmt.Errorf("stream %q is not the %s user's to read", stream, r.Name))
		return
	}
	var req server.CreateConsumerRequest
	if err := json.Unmarshal(m.Data, &req); err != nil {
		g.refuse(m, r, fmt.Errorf("not a consumer create request: %v", err))
		return
	}
	for _, n := range []string{req.Config.Name, req.Config.Durable} {
		switch {
		case n == "":
		case consumer == "":
			consumer = n
		case n != consumer:
			g.refuse(m, r, fmt.Errorf("consumer name %q in the request differs from %q in the subject", n, consumer))
			return
		}
	}
	// The kind of consumer first: a push consumer is refused as one, whatever its name.
	if ds := req.Config.DeliverSubject; ds != "" && (r.DeliverPrefix == "" || !strings.HasPrefix(ds, r.DeliverPrefix)) {
		if r.DeliverPrefix == "" {
			g.refuse(m, r, fmt.Errorf("the %s user's consumers are pull consumers: deliver_subject must be empty", r.Name))
		} else {
			g.refuse(m, r, fmt.Errorf("deliver_subject must begin with %s", r.DeliverPrefix))
		}
		return
	}
	if err := r.allowed(stream, consumer, false); err != nil {
		g.refuse(m, r, err)
		return
	}
	if consumer != "" {
		if err := g.notTheirs(r, stream, consumer); err != nil {
			g.refuse(m, r, err)
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), gateRequestTimeout)
	defer cancel()
	if r.MaxConsumers > 0 {
		n, exists, err := g.countConsumers(ctx, stream, r.ConsumerPrefix, consumer)
		if err != nil {
			g.refuseCode(m, r, 503, fmt.Errorf("cannot count consumers: %v", err))
			return
		}
		if !exists && n >= r.MaxConsumers {
			g.refuse(m, r, fmt.Errorf("the %s user has %d consumers, the most allowed (delete one first)", r.Name, n))
			return
		}
	}
	resp, err := g.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: target, Header: forwardHeader(m), Data: m.Data})
	if err != nil {
		g.refuseCode(m, r, 503, fmt.Errorf("jetstream did not answer: %v", err))
		return
	}
	_ = m.RespondMsg(&nats.Msg{Header: resp.Header, Data: resp.Data})
}

// notTheirs says why an existing consumer is not the role's to change or delete: a push consumer that
// delivers outside the role's DeliverPrefix is someone else's (the ledger's bucket watchers deliver to its
// own inbox), whatever its name. Nil if the consumer is the role's, or does not exist.
func (g *ConsumerGate) notTheirs(r Role, stream, consumer string) error {
	ctx, cancel := context.WithTimeout(context.Background(), gateRequestTimeout)
	defer cancel()
	// The API's own info request: nats.go's Consumer refuses push consumers, which are the ones to look at.
	msg, err := g.nc.RequestWithContext(ctx, "$JS.API.CONSUMER.INFO."+stream+"."+consumer, nil)
	if err != nil {
		return fmt.Errorf("cannot look at consumer %s: %v", consumer, err)
	}
	var info struct {
		Error *struct {
			Code    int `json:"code"`
			ErrCode int `json:"err_code"`
		} `json:"error"`
		Config struct {
			DeliverSubject string `json:"deliver_subject"`
		} `json:"config"`
	}
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		return fmt.Errorf("cannot look at consumer %s: %v", consumer, err)
	}
	if info.Error != nil {
		if info.Error.Code == 404 {
			return nil
		}
		return fmt.Errorf("cannot look at consumer %s: error %d/%d", consumer, info.Error.Code, info.Error.ErrCode)
	}
	ds := info.Config.DeliverSubject
	if ds != "" && (r.DeliverPrefix == "" || !strings.HasPrefix(ds, r.DeliverPrefix)) {
		return fmt.Errorf("consumer %s is not the %s user's", consumer, r.Name)
	}
	return nil
}

// countConsumers counts the stream's consumers whose names begin with prefix, and tells whether name is
// one of them.
func (g *ConsumerGate) countConsumers(ctx context.Context, stream, prefix, name string) (int, bool, error) {
	st, err := g.js.Stream(ctx, stream)
	if err != nil {
		return 0, false, err
	}
	names := st.ConsumerNames(ctx)
	n, exists := 0, false
	for c := range names.Name() {
		if strings.HasPrefix(c, prefix) {
			n++
		}
		exists = exists || c == name
	}
	return n, exists, names.Err()
}

// forwardHeader is the header of m without the requester's identity, which the server added on its way
// through the import (Nats-Request-Info): JetStream must see the ledger's account, whose stream it is.
func forwardHeader(m *nats.Msg) nats.Header {
	if len(m.Header) == 0 {
		return nil
	}
	h := nats.Header{}
	for k, v := range m.Header {
		if k != "Nats-Request-Info" {
			h[k] = v
		}
	}
	return h
}

func (g *ConsumerGate) refuse(m *nats.Msg, r Role, err error) { g.refuseCode(m, r, 403, err) }

// refuseCode answers as JetStream answers an API error; an acknowledgement or a pull gets a status
// message, as JetStream sends to pulls.
func (g *ConsumerGate) refuseCode(m *nats.Msg, r Role, code int, err error) {
	g.log.Debug("consumer gate refused", "role", r.Name, "subject", m.Subject, "err", err)
	if m.Reply == "" {
		return
	}
	if strings.Contains(m.Subject, ".API.CONSUMER.MSG.NEXT.") {
		h := nats.Header{}
		h.Set("Status", "409")
		h.Set("Description", err.Error())
		_ = m.RespondMsg(&nats.Msg{Header: h})
		return
	}
	body, _ := json.Marshal(map[string]any{"error": map[string]any{"code": code, "description": err.Error()}})
	_ = m.Respond(body)
}
