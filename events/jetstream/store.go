package jetstream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/salesledger/ledger/domain"
	"github.com/salesledger/ledger/events"
)

// StreamName is the one stream that holds every ledger event.
const StreamName = "LEDGER"

// NoExpectation appends without an optimistic-concurrency check.
const NoExpectation = events.NoExpectation

// Write is events.Write, re-exported for callers of this package.
type Write = events.Write

// Headers JetStream acts on.
const (
	hdrMsgID           = "Nats-Msg-Id"
	hdrExpectedSubjSeq = "Nats-Expected-Last-Subject-Sequence"
	hdrExpectedSubject = "Nats-Expected-Last-Subject-Sequence-Subject"
	hdrBatchID         = "Nats-Batch-Id"
	hdrBatchSeq        = "Nats-Batch-Sequence"
	hdrBatchCommit     = "Nats-Batch-Commit"
)

// StreamConfig configures the LEDGER stream.
type StreamConfig struct {
	Replicas int
	// Duplicates is the de-duplication window for Nats-Msg-Id.
	Duplicates time.Duration
}

// Store is the event store. It is safe for concurrent use.
type Store struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream // set by EnsureStream; direct gets go through it without a lookup
	// AppendTimeout bounds one append, including the server's fsync.
	AppendTimeout time.Duration
	// Observe, if set, is told the outcome of every append: the number of events and the error.
	Observe func(n int, err error)
	// ConsumerPrefix begins the names of the consumers Subscribe makes (default OwnConsumerPrefix, which
	// only the ledger may use on the embedded server; operator tools use OperatorConsumerPrefix).
	ConsumerPrefix string
	group          atomic.Pointer[grouper] // set by EnableGroupCommit
	health         *Health

	keysMu sync.Mutex
	keys   *Keyring // seals personal data; opened by EnsureStream, or on first need

	secretsMu sync.Mutex
	secrets   jetstream.KeyValue // the ledger_secrets bucket, once SharedSecret made or found it
}

// New wraps a connection. Call EnsureStream before the first append.
func New(nc *nats.Conn) (*Store, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	s := &Store{nc: nc, js: js, AppendTimeout: 10 * time.Second}
	s.health = &Health{store: s}
	return s, nil
}

// JetStream exposes the underlying context, for key-value and object stores.
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// EnsureStream creates the LEDGER stream if it is missing and brings its configuration up to date.
func (s *Store) EnsureStream(ctx context.Context, cfg StreamConfig) error {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Duplicates <= 0 {
		cfg.Duplicates = 5 * time.Minute
	}
	var stream jetstream.Stream
	err := retryAPI(ctx, func(ctx context.Context) (err error) {
		stream, err = s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:               StreamName,
			Description:        "Sales ledger events: ledger.<mode>.<store>.<aggregate>.<id>.<event_type>",
			Subjects:           []string{events.SubjectPrefix + ".>"},
			Storage:            jetstream.FileStorage,
			Retention:          jetstream.LimitsPolicy,
			Discard:            jetstream.DiscardNew,
			Replicas:           cfg.Replicas,
			Duplicates:         cfg.Duplicates,
			AllowDirect:        true,
			AllowAtomicPublish: true,
			DenyDelete:         true,
			DenyPurge:          true,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", StreamName, err)
	}
	s.stream = stream
	keys, err := newKeyring(ctx, s.nc, s.js, true, cfg.Replicas)
	if err != nil {
		return err
	}
	s.keysMu.Lock()
	s.keys = keys
	s.keysMu.Unlock()
	return nil
}

// Keys is the keyring that seals and opens personal data, opened on first use by a store that did not
// ensure the stream (a reader).
func (s *Store) Keys(ctx context.Context) (*Keyring, error) {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	if s.keys != nil {
		return s.keys, nil
	}
	keys, err := newKeyring(ctx, s.nc, s.js, false, 0)
	if err != nil {
		return nil, err
	}
	s.keys = keys
	return keys, nil
}

// codecKeys is the keyring as the codec uses it: resolved on each use, so a reader that started before
// the keys bucket existed still opens what is sealed later.
func (s *Store) codecKeys() events.Keyring { return lazyKeys{s} }

type lazyKeys struct{ s *Store }

func (l lazyKeys) Seal(ctx context.Context, subject string, plaintext []byte) (string, error) {
	k, err := l.s.Keys(ctx)
	if err != nil {
		return "", err
	}
	return k.Seal(ctx, subject, plaintext)
}

func (l lazyKeys) Open(ctx context.Context, subject, sealed string) ([]byte, error) {
	k, err := l.s.Keys(ctx)
	if err != nil {
		return nil, err
	}
	return k.Open(ctx, subject, sealed)
}

// ledgerStream is the LEDGER stream handle, looked up once if EnsureStream did not run (a client that
// only reads, like rebuild against a running ledger).
func (s *Store) ledgerStream(ctx context.Context) (jetstream.Stream, error) {
	if s.stream != nil {
		return s.stream, nil
	}
	return s.js.Stream(ctx, StreamName)
}

// Append appends events to one aggregate, atomically: all of them or none. expect is the aggregate's
// last subject sequence the caller decided on (0 for a new aggregate, NoExpectation for none).
// It returns the stream sequence of the last event. A wrong expectation is domain.ErrConflict.
// Appending the same envelopes again (same IDs) within the de-duplication window is a no-op that
// returns the original sequence, with or without an expectation, as long as the aggregate has not moved
// on since.
func (s *Store) Append(ctx context.Context, expect uint64, evs ...events.Envelope) (uint64, error) {
	ws := make([]Write, len(evs))
	for i, e := range evs {
		ws[i] = Write{Event: e, Expect: NoExpectation}
	}
	if len(ws) > 0 {
		ws[0].Expect = expect
	}
	return s.AppendWrites(ctx, ws...)
}

// AppendWrites appends events that may belong to several aggregates, each with its own condition, as one
// atomic batch: either every condition holds and every event is stored, or nothing is. Only the first
// write of each subject filter may carry a condition.
//
// The call returns only after JetStream acknowledged the append, which with SyncAlways means the events
// are on disk. While Health knows the log refuses writes (a full disk), it fails at once with
// domain.ErrUnavailable, having sent nothing.
func (s *Store) AppendWrites(ctx context.Context, ws ...Write) (seq uint64, err error) {
	if len(ws) == 0 {
		return 0, errors.New("append: no events")
	}
	if s.Observe != nil {
		defer func() { s.Observe(len(ws), err) }()
	}
	if err := s.health.blocked(); err != nil {
		return 0, fmt.Errorf("append: %w: %w", domain.ErrUnavailable, err)
	}
	defer func() { s.health.observe(err) }()
	if s.AppendTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.AppendTimeout)
		defer cancel()
	}
	keys := s.codecKeys()
	msgs := make([]*nats.Msg, len(ws))
	for i, w := range ws {
		m, err := message(ctx, keys, w)
		if err != nil {
			return 0, err
		}
		// Refused here, alone: sent, it would fail the whole group of appends it joined.
		if size, most := int64(m.Size()-len(m.Subject))+batchHeaderRoom, s.nc.MaxPayload(); most > 0 && size > most {
			return 0, fmt.Errorf("%w: %s would be %d bytes with its headers, the server takes %d", domain.ErrTooLarge, w.Event.Type(), size, most)
		}
		msgs[i] = m
	}
	if g := s.group.Load(); g != nil {
		return g.submit(ctx, ws, msgs)
	}
	return s.appendNow(ctx, ws, msgs)
}

// batchHeaderRoom is what an atomic batch adds to a message's headers (batch id, sequence, commit).
const batchHeaderRoom = 128

// appendNow writes one AppendWrites call's messages: one message as a plain publish, more as their
// own atomic batch.
func (s *Store) appendNow(ctx context.Context, ws []Write, msgs []*nats.Msg) (uint64, error) {
	var seq uint64
	err := s.retryTransient(ctx, func(ctx context.Context) error {
		var err error
		seq, err = s.appendOnce(ctx, ws, msgs)
		if errors.Is(err, domain.ErrConflict) {
			// JetStream checks expectations before Nats-Msg-Id de-duplication, so a re-sent conditional
			// append (a retry after a lost acknowledgement) reads as a conflict. If the events are the
			// ones already there, the append happened: answer with where.
			if at, ok := s.storedAlready(ctx, ws[len(ws)-1].Event); ok {
				seq, err = at, nil
			}
		}
		return err
	})
	return seq, err
}

// storedAlready reports the sequence of e if it is the last event on its own subject.
func (s *Store) storedAlready(ctx context.Context, e events.Envelope) (uint64, bool) {
	m, err := s.lastMsg(ctx, e.Subject())
	if err != nil || m.Header.Get(hdrMsgID) != e.ID {
		return 0, false
	}
	return m.Sequence, true
}

func (s *Store) appendOnce(ctx context.Context, ws []Write, msgs []*nats.Msg) (uint64, error) {
	if len(msgs) == 1 {
		m := msgs[0]
		m.Header.Del(hdrBatchID) // left by a group batch the server refused
		m.Header.Del(hdrBatchSeq)
		m.Header.Del(hdrBatchCommit)
		ack, err := s.js.PublishMsg(ctx, m)
		if err != nil {
			return 0, classify(err)
		}
		return ack.Sequence, nil
	}
	seq, err := s.publishAtomic(ctx, msgs)
	if errors.Is(err, errDuplicateBatch) {
		// Batches are all-or-nothing and every event ID is new, so a known ID means this very batch was
		// committed before and is being re-sent: the append already happened. The server does not say
		// where, so find the last event of the batch.
		return s.sequenceOf(ctx, ws[len(ws)-1].Event)
	}
	return seq, err
}

// attemptTimeout bounds one try of an append. An acknowledgement lost with a stream leader (a failover)
// is then retried within seconds instead of waiting out the whole append timeout. A retry re-sends the
// same event IDs: JetStream de-duplicates them, and a conditional one is recognised by storedAlready, so
// a retry never stores an event twice nor reports its own success as a conflict.
const attemptTimeout = 2 * time.Second

// retryTransient runs op with attemptTimeout per try, again after a transient failure, until ctx ends
// or Health knows the log refuses writes (a retry would only wait out its timeout).
func (s *Store) retryTransient(ctx context.Context, op func(context.Context) error) error {
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := op(actx)
		cancel()
		if err == nil || !errors.Is(err, domain.ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		// Health hears of every failed try, so that its probe looks into it while this append still
		// retries — and ends the retries once it found the log refusing writes.
		s.health.observe(err)
		if s.health.blocked() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
	}
}

// apiAttemptTimeout bounds one try of a JetStream API request (create or update a stream or bucket, a
// bucket's key) made by retryAPI. A request that reaches a server while its stream or meta group is
// electing a leader is dropped without an answer; without a bound of its own it would take the caller's
// whole budget with it (a replica starting during a NATS node's failure then failed to start).
const apiAttemptTimeout = 5 * time.Second

// retryAPI runs an idempotent JetStream API request with apiAttemptTimeout per try, again after a
// transient failure, until ctx ends.
func retryAPI(ctx context.Context, op func(context.Context) error) error {
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		actx, cancel := context.WithTimeout(ctx, apiAttemptTimeout)
		err := op(actx)
		cancel()
		if err == nil || !errors.Is(transient(err), domain.ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
	}
}

var (
	errDuplicateBatch = errors.New("atomic batch already stored")
	// errBatchRefused is any answer of the server that refuses an atomic batch as a whole: nothing of it
	// was stored.
	errBatchRefused = errors.New("atomic batch refused")
)

// sequenceOf finds the stream sequence of an event already in its aggregate.
func (s *Store) sequenceOf(ctx context.Context, e events.Envelope) (uint64, error) {
	evs, _, err := s.Load(ctx, e.Aggregate)
	if err != nil {
		return 0, err
	}
	for _, got := range evs {
		if got.ID == e.ID {
			return got.Sequence, nil
		}
	}
	return 0, fmt.Errorf("append batch: JetStream reports event %s as a duplicate but it is not in %s", e.ID, e.Aggregate.Filter())
}

func message(ctx context.Context, keys events.Keyring, w Write) (*nats.Msg, error) {
	subject, hdr, data, err := events.EncodeWith(ctx, keys, w.Event)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(subject)
	m.Data = data
	for k, v := range hdr {
		m.Header.Set(k, v)
	}
	m.Header.Set(hdrMsgID, w.Event.ID)
	if w.Expect != NoExpectation {
		filter := w.ExpectFilter
		if filter == "" {
			filter = w.Event.Aggregate.Filter()
		}
		m.Header.Set(hdrExpectedSubjSeq, strconv.FormatUint(w.Expect, 10))
		m.Header.Set(hdrExpectedSubject, filter)
	}
	return m, nil
}

// publishAtomic sends msgs as one JetStream atomic batch (nats-server 2.12+, stream allow_atomic).
// The commit message is a request; its reply is the batch's PubAck.
func (s *Store) publishAtomic(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	batchID := randomToken() // stored in the log: not nuid, whose sequence would let a reader predict other names
	for i, m := range msgs {
		m.Header.Set(hdrBatchID, batchID)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if i < len(msgs)-1 {
			m.Header.Del(hdrBatchCommit)
			if err := s.nc.PublishMsg(m); err != nil {
				return 0, fmt.Errorf("append batch: %w", err)
			}
		}
	}
	last := msgs[len(msgs)-1]
	last.Header.Set(hdrBatchCommit, "1")
	reply, err := s.nc.RequestMsgWithContext(ctx, last)
	if err != nil {
		return 0, transient(fmt.Errorf("append batch: %w", err))
	}
	var ack struct {
		Sequence uint64 `json:"seq"`
		Error    *struct {
			Code        int    `json:"code"`
			ErrorCode   uint16 `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &ack); err != nil {
		return 0, fmt.Errorf("append batch: unreadable ack %q: %w", reply.Data, err)
	}
	if ack.Error == nil {
		return ack.Sequence, nil
	}
	code := jetstream.ErrorCode(ack.Error.ErrorCode)
	switch {
	case code == jetstream.JSErrCodeStreamWrongLastSequence, code == jetstream.JSErrCodeStreamWrongLastSequenceConstant:
		return 0, fmt.Errorf("%w: %w: %s", domain.ErrConflict, errBatchRefused, ack.Error.Description)
	case code == errCodeBatchContainsDuplicate:
		return 0, fmt.Errorf("%w: %w", errDuplicateBatch, errBatchRefused)
	case code == errCodeBatchIncomplete, unavailableCodes[code]:
		// Nothing of the batch was stored. Not errBatchRefused: writing its members one by one meets the
		// same server.
		return 0, fmt.Errorf("append batch: %w: %s (err_code %d)", domain.ErrUnavailable, ack.Error.Description, ack.Error.ErrorCode)
	}
	return 0, fmt.Errorf("append batch: %w: %s (err_code %d)", errBatchRefused, ack.Error.Description, ack.Error.ErrorCode)
}

const (
	// errCodeBatchContainsDuplicate is JetStream's "atomic publish batch contains duplicate message id".
	errCodeBatchContainsDuplicate jetstream.ErrorCode = 10201
	// errCodeBatchIncomplete is "atomic publish batch is incomplete": the server lost part of the batch
	// before its commit — a message lost in transit, or the server could not stage it (a full disk).
	errCodeBatchIncomplete jetstream.ErrorCode = 10176
)

// unavailableCodes are JetStream's answers that do nothing for want of resources or of JetStream
// itself: resource limits exceeded (10002, 10023, 10028, 10047), JetStream not enabled (10039, 10076 —
// while the embedded server's JetStream restarts), the cluster or stream without a leader (10008,
// 10009, 10118). A retry may succeed once they are back.
var unavailableCodes = map[jetstream.ErrorCode]bool{
	10002: true, 10023: true, 10028: true, 10047: true,
	jetstream.JSErrCodeJetStreamNotEnabledForAccount: true, jetstream.JSErrCodeJetStreamNotEnabled: true,
	10008: true, 10009: true, 10118: true,
}

// classify turns JetStream's two wrong-last-sequence codes into domain.ErrConflict, and what transient
// recognises into domain.ErrUnavailable.
func classify(err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return fmt.Errorf("%w: %s", domain.ErrConflict, apiErr.Description)
		}
	}
	return transient(fmt.Errorf("append: %w", err))
}

// transient marks the errors after which nothing was acknowledged and a retry may succeed: no stream
// leader yet (no responders), a timeout waiting for the acknowledgement, JetStream not enabled (the
// embedded server's JetStream restarting).
func transient(err error) error {
	var apiErr *jetstream.APIError
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &apiErr) && unavailableCodes[apiErr.ErrorCode] {
		return fmt.Errorf("%w: %w", domain.ErrUnavailable, err)
	}
	return err
}

// Load reads every event of one aggregate in order and returns them with the aggregate's last subject
// sequence (0 for an aggregate with no events), the value to pass as expect to the next Append.
func (s *Store) Load(ctx context.Context, agg events.Aggregate) ([]events.Envelope, uint64, error) {
	if agg.Validate() != nil {
		return nil, 0, nil // a wildcard or a dot in a token would widen the filter to other aggregates
	}
	return s.LoadFilter(ctx, agg.Filter())
}

// LoadFilter reads every event whose subject matches filter, in stream order. It uses JetStream's
// batched direct get (one request per 256 events, no consumer), so loading an aggregate costs a round
// trip, not a consumer's creation and deletion.
//
// On a replicated stream a direct get may be answered by a follower that has not applied the latest
// writes yet. An answer of "nothing matches" is therefore checked with the stream leader; if the leader
// has something, the load is repeated until a replica answers with it, for up to 2 s, and is
// domain.ErrUnavailable after that. (A stale answer that is not empty only leads to a decision whose
// append carries an expectation, which the log then refuses.)
func (s *Store) LoadFilter(ctx context.Context, filter string) ([]events.Envelope, uint64, error) {
	out, err := s.loadOnce(ctx, filter)
	if err != nil || len(out) > 0 {
		return out, lastSeq(out), err
	}
	stream, err := s.ledgerStream(ctx)
	if err != nil {
		return nil, 0, transient(fmt.Errorf("load %s: %w", filter, err))
	}
	if !replicated(stream) {
		return nil, 0, nil
	}
	m, err := s.leaderLast(ctx, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("load %s: %w", filter, err)
	}
	deadline := time.Now().Add(attemptTimeout)
	for backoff := 10 * time.Millisecond; ; backoff = min(2*backoff, 200*time.Millisecond) {
		if out, err = s.loadOnce(ctx, filter); err != nil || lastSeq(out) >= m.Sequence {
			return out, lastSeq(out), err
		}
		if time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("load %s: %w: the replicas answering are behind the stream leader (at %d)", filter, domain.ErrUnavailable, m.Sequence)
		}
		select {
		case <-ctx.Done():
			return nil, 0, transient(fmt.Errorf("load %s: %w", filter, ctx.Err()))
		case <-time.After(backoff):
		}
	}
}

// loadOnce reads every event matching filter from whichever replica answers.
func (s *Store) loadOnce(ctx context.Context, filter string) ([]events.Envelope, error) {
	var out []events.Envelope
	next := uint64(1)
	for {
		batch, err := s.directBatch(ctx, filter, next, loadBatch)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", filter, err)
		}
		out = append(out, batch...)
		if len(batch) < loadBatch {
			return out, nil
		}
		next = batch[len(batch)-1].Sequence + 1
	}
}

func lastSeq(evs []events.Envelope) uint64 {
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Sequence
}

// replicated tells whether the stream has followers, whose direct gets may lag behind its leader.
func replicated(stream jetstream.Stream) bool {
	info := stream.CachedInfo()
	return info != nil && info.Config.Replicas > 1
}

// lastMsg is the last message whose subject matches filter, or jetstream.ErrMsgNotFound. A direct get
// found nothing on a replicated stream is asked again of the leader (see LoadFilter).
func (s *Store) lastMsg(ctx context.Context, filter string) (*jetstream.RawStreamMsg, error) {
	stream, err := s.ledgerStream(ctx)
	if err != nil {
		return nil, err
	}
	m, err := stream.GetLastMsgForSubject(ctx, filter)
	if !errors.Is(err, jetstream.ErrMsgNotFound) || !replicated(stream) {
		return m, err
	}
	return s.leaderLast(ctx, filter)
}

// leaderLast asks the stream leader itself — JetStream's message get API, which only the leader
// answers, unlike direct gets — for the last message matching filter.
func (s *Store) leaderLast(ctx context.Context, filter string) (*jetstream.RawStreamMsg, error) {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	req, _ := json.Marshal(map[string]string{"last_by_subj": filter})
	reply, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+StreamName, req)
	if err != nil {
		return nil, transient(fmt.Errorf("last %s from the stream leader: %w", filter, err))
	}
	var resp struct {
		Message *struct {
			Subject  string    `json:"subject"`
			Sequence uint64    `json:"seq"`
			Header   []byte    `json:"hdrs"`
			Data     []byte    `json:"data"`
			Time     time.Time `json:"time"`
		} `json:"message"`
		Error *struct {
			ErrorCode   jetstream.ErrorCode `json:"err_code"`
			Description string              `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, fmt.Errorf("last %s from the stream leader: unreadable answer %q: %w", filter, reply.Data, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, jetstream.ErrMsgNotFound
	case resp.Error != nil && unavailableCodes[resp.Error.ErrorCode]:
		return nil, fmt.Errorf("last %s from the stream leader: %w: %s (err_code %d)", filter, domain.ErrUnavailable, resp.Error.Description, resp.Error.ErrorCode)
	case resp.Error != nil:
		return nil, fmt.Errorf("last %s from the stream leader: %s (err_code %d)", filter, resp.Error.Description, resp.Error.ErrorCode)
	case resp.Message == nil:
		return nil, fmt.Errorf("last %s from the stream leader: no message in %q", filter, reply.Data)
	}
	m := &jetstream.RawStreamMsg{Subject: resp.Message.Subject, Sequence: resp.Message.Sequence, Data: resp.Message.Data, Time: resp.Message.Time}
	if len(resp.Message.Header) > 0 {
		if m.Header, err = nats.DecodeHeadersMsg(resp.Message.Header); err != nil {
			return nil, fmt.Errorf("last %s from the stream leader: headers: %w", filter, err)
		}
	}
	return m, nil
}

const loadBatch = 256

// directBatch asks for up to n messages matching filter from sequence start on. The server answers with
// the messages (original headers plus Nats-Sequence and Nats-Subject), then an end-of-batch status 204;
// or a status 404 when nothing matches.
func (s *Store) directBatch(ctx context.Context, filter string, start uint64, n int) ([]events.Envelope, error) {
	keys := s.codecKeys()
	req, _ := json.Marshal(map[string]any{"seq": start, "next_by_subj": filter, "batch": n})
	inbox := s.nc.NewRespInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	if err := s.nc.PublishRequest("$JS.API.DIRECT.GET."+StreamName, inbox, req); err != nil {
		return nil, err
	}
	if s.AppendTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.AppendTimeout)
		defer cancel()
	}
	var out []events.Envelope
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, transient(err)
		}
		switch status := m.Header.Get("Status"); status {
		case "":
		case "404":
			return out, nil
		case "204":
			return out, nil
		default:
			return nil, fmt.Errorf("direct get: status %s %s", status, m.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("direct get: sequence %q", m.Header.Get("Nats-Sequence"))
		}
		e, err := events.DecodeMessageWith(ctx, keys, m.Header.Get("Nats-Subject"), m.Header.Get, m.Data, seq)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
}

// LastSequence is the stream's last sequence: the position every projection is trying to reach.
func (s *Store) LastSequence(ctx context.Context) (uint64, error) {
	stream, err := s.ledgerStream(ctx)
	if err != nil {
		return 0, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// Last returns the last event whose subject matches filter, and false if there is none. It reads the
// stream directly, so it is exact even while projections lag: claims (an email, an idempotency key) are
// read this way. "None" from a follower of a replicated stream is checked with the leader (LoadFilter).
func (s *Store) Last(ctx context.Context, filter string) (events.Envelope, bool, error) {
	m, err := s.lastMsg(ctx, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return events.Envelope{}, false, nil
	}
	if err != nil {
		return events.Envelope{}, false, transient(fmt.Errorf("last %s: %w", filter, err))
	}
	e, err := events.DecodeMessageWith(ctx, s.codecKeys(), m.Subject, m.Header.Get, m.Data, m.Sequence)
	return e, err == nil, err
}

// SharedSecret returns a 32-byte secret every ledger replica on this NATS shares, creating it on first
// use. KV Create is a compare-and-set, so concurrent first starts agree on one value.
func (s *Store) SharedSecret(ctx context.Context, name string, replicas int) ([]byte, error) {
	if replicas <= 0 {
		replicas = 1
	}
	kv, err := s.secretsBucket(ctx, replicas)
	if err != nil {
		return nil, err
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	// A Create whose answer was lost may have stored fresh: the retry then finds the key taken, and
	// the Get below reads whichever value won.
	err = retryAPI(ctx, func(ctx context.Context) error {
		_, err := kv.Create(ctx, name, fresh)
		return err
	})
	if err == nil {
		return fresh, nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	var e jetstream.KeyValueEntry
	err = retryAPI(ctx, func(ctx context.Context) (err error) {
		e, err = kv.Get(ctx, name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	if len(e.Value()) != len(fresh) {
		// Only the ledger writes the bucket; anything else there is damage, not a weaker key to use.
		return nil, fmt.Errorf("secret %s: %d bytes in the secrets bucket, want %d", name, len(e.Value()), len(fresh))
	}
	return e.Value(), nil
}

// secretsBucket makes or finds the ledger_secrets bucket, once per Store: a start asks for several
// secrets, and each make-or-update is a round of stream API calls (most of a second while the server
// recovers a large stream).
func (s *Store) secretsBucket(ctx context.Context, replicas int) (jetstream.KeyValue, error) {
	s.secretsMu.Lock()
	defer s.secretsMu.Unlock()
	if s.secrets != nil {
		return s.secrets, nil
	}
	var kv jetstream.KeyValue
	err := retryAPI(ctx, func(ctx context.Context) (err error) {
		kv, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: "ledger_secrets", Description: "secrets shared by ledger replicas", Storage: jetstream.FileStorage, Replicas: replicas,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("secrets bucket: %w", err)
	}
	s.secrets = kv
	return kv, nil
}

// PaymentsConsumer returns the real name of the payment processor's durable consumer, the same for every
// replica and every start: PaymentsDurable, "_" and 24 hex digits of a shared secret, so that no reader
// of the stream can name it (reservedConsumer). A consumer left under the old name PaymentsDurable is
// moved to the new one first, from where it was acknowledged (MigrateDurable).
func (s *Store) PaymentsConsumer(ctx context.Context, replicas int) (string, error) {
	secret, err := s.SharedSecret(ctx, "payments_consumer_name", replicas)
	if err != nil {
		return "", err
	}
	name := PaymentsDurable + "_" + hex.EncodeToString(secret[:12])
	if err := s.MigrateDurable(ctx, PaymentsDurable, name); err != nil {
		return "", err
	}
	return name, nil
}

// WebhooksConsumer returns the real name of the webhook dispatcher's durable consumer, the same for every
// replica and every start: WebhooksDurable, "_" and 24 hex digits of a shared secret (unnameable by any
// reader of the stream, as PaymentsConsumer's). The first start makes it, with filters, from the first
// webhook endpoint ever created (no event before it can have a recipient) or, if there is none yet,
// from the end of the log, so that a ledger with a long history does not read it all to find nothing
// to send.
func (s *Store) WebhooksConsumer(ctx context.Context, replicas int, filters []string) (string, error) {
	secret, err := s.SharedSecret(ctx, "webhooks_consumer_name", replicas)
	if err != nil {
		return "", err
	}
	name := WebhooksDurable + "_" + hex.EncodeToString(secret[:12])
	// Each call is retried while JetStream is unavailable (a leader election): a replica starting during
	// a failover waits it out rather than fail its start.
	err = retryAPI(ctx, func(ctx context.Context) error {
		_, err := s.js.Consumer(ctx, StreamName, name)
		return err
	})
	if err == nil {
		return name, nil
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return "", fmt.Errorf("consumer %s: %w", WebhooksDurable, err)
	}
	var start uint64
	err = retryAPI(ctx, func(ctx context.Context) error {
		stream, err := s.ledgerStream(ctx)
		if err != nil {
			return err
		}
		first, err := stream.GetMsg(ctx, 1, jetstream.WithGetMsgSubject("ledger.*.*."+events.AggregateWebhookEndpoint+".*."+events.TypeWebhookEndpointCreated))
		switch {
		case err == nil:
			start = first.Sequence
			return nil
		case errors.Is(err, jetstream.ErrMsgNotFound):
			last, err := s.LastSequence(ctx)
			start = last + 1
			return err
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("consumer %s: the first webhook endpoint: %w", WebhooksDurable, err)
	}
	err = retryAPI(ctx, func(ctx context.Context) error {
		_, err := s.js.CreateConsumer(ctx, StreamName, jetstream.ConsumerConfig{
			Durable: name, FilterSubjects: filters, AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: -1,
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start,
		})
		if errors.Is(err, jetstream.ErrConsumerExists) {
			return nil // made by another replica meanwhile
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("consumer %s: %w", WebhooksDurable, err)
	}
	return name, nil
}
