package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Who may connect to the embedded server (docs/operations.md, "Threat model"):
//
//   - the ledger itself, in process: an NKey made afresh at every start and never written anywhere, good
//     for in-process connections only; every right in jetstream.LedgerAccount; replies on
//     jetstream.InboxPrefix;
//   - operator tools (ledger rebuild, ledger tail) through the listener: an NKey whose seed is
//     operatorSeedFile in the data dir (0600); jetstream.OperatorRole, in an account of its own;
//   - the analytics user through the listener, when LEDGER_NATS_ANALYTICS_PASSWORD is set;
//     jetstream.AnalyticsRole, in an account of its own.
//
// NKeys authenticate by signing the server's nonce, so no secret crosses the connection, and checking one
// costs a signature verification; the analytics password is compared in constant time, not through bcrypt,
// so a stranger's failed logins cost the server microseconds, not the ~80 ms of CPU a bcrypt check takes.
const (
	operatorSeedFile = "nats_operator.nk"
	// legacyPasswordFile held the password of the former full-access "ledger" user; it is removed at start.
	legacyPasswordFile = "nats_ledger_password"
	analyticsUser      = "analytics"
)

// natsAuth is the embedded server's users and the ledger's own connection options.
type natsAuth struct {
	nkeys     []*server.NkeyUser
	operators []*server.NkeyUser
	analytics []*server.User
	// self authenticates the ledger's in-process connection.
	self nats.Option
}

// newNATSAuth makes the ledger's in-process identity and, when the server listens, the operator and
// analytics users.
func newNATSAuth(dataDir string, listen bool, analyticsPassword string) (natsAuth, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return natsAuth{}, err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return natsAuth{}, err
	}
	a := natsAuth{
		nkeys: []*server.NkeyUser{{Nkey: pub, AllowedConnectionTypes: connTypes(jwt.ConnectionTypeInProcess)}},
		self:  nats.Nkey(pub, kp.Sign),
	}
	_ = os.Remove(filepath.Join(dataDir, legacyPasswordFile))
	if !listen {
		return a, nil
	}
	opPub, err := operatorKey(dataDir)
	if err != nil {
		return natsAuth{}, err
	}
	a.operators = []*server.NkeyUser{{Nkey: opPub, AllowedConnectionTypes: connTypes(jwt.ConnectionTypeStandard)}}
	if analyticsPassword != "" {
		a.analytics = []*server.User{{Username: analyticsUser, Password: analyticsPassword,
			AllowedConnectionTypes: connTypes(jwt.ConnectionTypeStandard)}}
	}
	return a, nil
}

func connTypes(types ...string) map[string]struct{} {
	m := map[string]struct{}{}
	for _, t := range types {
		m[t] = struct{}{}
	}
	return m
}

// operatorKey returns the public key of the operator NKey, creating its seed file (0600) on first use.
// The seed guards nothing the data dir itself does not: whoever reads the data dir reads the log.
func operatorKey(dataDir string) (string, error) {
	path := filepath.Join(dataDir, operatorSeedFile)
	seed, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return "", err
		}
		if seed, err = kp.Seed(); err != nil {
			return "", err
		}
		if err := os.WriteFile(path, append(seed, '\n'), 0o600); err != nil {
			return "", fmt.Errorf("nats operator key %s: %w", path, err)
		}
	} else if err != nil {
		return "", fmt.Errorf("nats operator key %s: %w", path, err)
	}
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
	if err != nil {
		return "", fmt.Errorf("nats operator key %s: %w", path, err)
	}
	return kp.PublicKey()
}
