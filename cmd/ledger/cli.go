package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
)

// command is one subcommand of `ledger`. The table below is the only list of commands: dispatch, `ledger
// help` and each command's usage all come from it.
type command struct {
	name    string
	summary string // one line for `ledger help`
	about   string // more for `ledger <name> -h`; may be empty
	// flags names the configuration flags the command uses; nil means all of them (serve).
	flags []string
	run   func(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error
}

// The configuration flags of the tools that read the log: where it is, and how loud to be.
var logFlags = []string{"data-dir", "nats-url", "nats-listen", "log-level"}

var (
	commandServe = command{
		name:    "serve",
		summary: "run the ledger: event store (embedded or external NATS), projection and HTTP API (the default)",
		about: "With no configuration it starts the embedded JetStream server with its data in ./data and the API\n" +
			"on 127.0.0.1:8080. SIGTERM or SIGINT drains in-flight requests and exits 0.",
	}
	commandRebuild = command{
		name:    "rebuild",
		summary: "rebuild the read store from the event log and switch to it (--until: an as-of store, no switch)",
		about: "It reads the log through LEDGER_NATS_URL, else a running ledger's listener at LEDGER_NATS_LISTEN\n" +
			"(as the read-only operator user, NKey seed nats_operator.nk in the data dir), else it opens the\n" +
			"embedded store itself.",
		flags: logFlags,
	}
	commandTail = command{
		name:    "tail",
		summary: "follow the event log, decoded, one line per event (--json, filters by store, type, aggregate)",
		about: "It connects like rebuild. Personal data is shown opened when the keyring can be read (the operator\n" +
			"user can), sealed otherwise. Without --since it starts with the log's last 10 events. With no ledger\n" +
			"running it opens the data dir itself and holds its LOCK, so a ledger cannot start meanwhile: it then\n" +
			"stops at the end of the log unless --follow is given.",
		flags: logFlags,
	}
	commandVersion = command{
		name:    "version",
		summary: "print the ledger's version, the VCS revision it was built from, and the Go version",
		flags:   []string{},
	}
	commandHelp = command{
		name:    "help",
		summary: "list the commands; \"ledger help <command>\" shows that command's flags",
		flags:   []string{},
	}
)

// commands is set in init: the help command's run refers to the table.
var commands []command

func init() {
	commandServe.run = serve
	commandRebuild.run = rebuild
	commandTail.run = tail
	commandVersion.run = version
	commandHelp.run = help
	commands = []command{commandServe, commandRebuild, commandTail, commandVersion, commandHelp}
}

func lookupCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func isHelpFlag(s string) bool { return s == "-h" || s == "-help" || s == "--help" }

// overview is `ledger help`: every command with its one line.
func overview(w io.Writer) {
	fmt.Fprint(w, "usage: ledger [command] [flags]\n\ncommands:\n")
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, "\nRun \"ledger <command> -h\" for a command's flags; every configuration flag also has a LEDGER_*\nenvironment variable (the flag wins).\n")
}

func help(_ context.Context, args []string, _ func(string) string, stdout, _ io.Writer) error {
	switch {
	case len(args) == 0:
		overview(stdout)
		return nil
	case len(args) == 1 && isHelpFlag(args[0]):
		commandHelp.usage(stdout, commandHelp.flagSet(new(Config), nil))
		return nil
	}
	c, ok := lookupCommand(args[0])
	if !ok || len(args) > 1 {
		return fmt.Errorf("help: unknown command %q; run \"ledger help\" for the list", strings.Join(args, " "))
	}
	c.usage(stdout, c.flagSet(new(Config), nil))
	return nil
}

// flagSet registers the command's configuration flags (bound to c) and its own (extra).
func (cmd command) flagSet(c *Config, extra func(*flag.FlagSet)) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // usage goes to stdout on -h, errors are returned
	for _, f := range cmd.configFlags(c) {
		fs.Var(f.Value, f.Name, f.Usage)
	}
	if extra != nil {
		extra(fs)
	}
	return fs
}

// configFlags are the configuration flags the command takes, bound to c.
func (cmd command) configFlags(c *Config) []*flag.Flag {
	all := flag.NewFlagSet("", flag.ContinueOnError)
	c.bindFlags(all)
	var fl []*flag.Flag
	if cmd.flags == nil {
		all.VisitAll(func(f *flag.Flag) { fl = append(fl, f) })
		return fl
	}
	for _, name := range cmd.flags {
		fl = append(fl, all.Lookup(name))
	}
	return fl
}

// uses says whether the command takes the setting of an environment variable.
func (cmd command) uses(env string) bool {
	for _, f := range cmd.configFlags(new(Config)) {
		if flagEnv(f) == env {
			return true
		}
	}
	return false
}

// serveOnly is the first flag in args that the command does not take but serve does, if any.
func serveOnly(cmd command, fs *flag.FlagSet, args []string) string {
	serveFlags := commandServe.flagSet(new(Config), nil)
	for _, a := range args {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && fs.Lookup(name) == nil && serveFlags.Lookup(name) != nil {
			return name
		}
	}
	return ""
}

// settingValue is a configuration flag's value as parsed: a value that does not parse is reported with
// the flag's environment variable, the other way to set it.
type settingValue struct {
	flag.Value
	name, env string
	failed    *error
}

func (v settingValue) Set(s string) error {
	err := v.Value.Set(s)
	if err != nil && *v.failed == nil {
		*v.failed = fmt.Errorf("--%s (%s): invalid value %q: %v", v.name, v.env, s, err)
	}
	return err
}

func (v settingValue) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func (cmd command) usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: ledger %s [flags]\n\n%s\n", cmd.name, cmd.summary)
	if cmd.about != "" {
		fmt.Fprintf(w, "\n%s\n", cmd.about)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		fmt.Fprint(w, "\nIt takes no flags.\n")
		return
	}
	fmt.Fprint(w, "\nflags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// commandConfig reads the environment, then the command's flags in args, and validates the settings the
// command uses (a tool does not check serve's). -h prints the command's usage to stdout and returns
// flag.ErrHelp.
func commandConfig(cmd command, args []string, env func(string) string, stdout io.Writer, extra func(*flag.FlagSet)) (Config, error) {
	var c Config
	c.setDefaults(env)
	var failed error
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, f := range cmd.configFlags(&c) {
		fs.Var(settingValue{Value: f.Value, name: f.Name, env: flagEnv(f), failed: &failed}, f.Name, f.Usage)
	}
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			var shown Config
			shown.setDefaults(env)
			cmd.usage(stdout, cmd.flagSet(&shown, extra))
			return c, err
		}
		if failed != nil {
			err = failed
		} else if name := serveOnly(cmd, fs, args); name != "" {
			err = fmt.Errorf("--%s is a setting of ledger serve only; ledger %s does not use it", name, cmd.name)
		}
		return c, fmt.Errorf("%s: %w (run \"ledger %s -h\" for its flags)", cmd.name, err, cmd.name)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%s: unexpected arguments: %v", cmd.name, fs.Args())
	}
	c.flagsWin(fs)
	return c, c.validate(cmd.uses)
}

// version is `ledger version`: the module version and VCS stamp from the build info, and Go's version.
func version(_ context.Context, args []string, env func(string) string, stdout, _ io.Writer) error {
	if _, err := commandConfig(commandVersion, args, env, stdout, nil); err != nil {
		return flagErr(err)
	}
	fmt.Fprint(stdout, versionText())
	return nil
}

func versionText() string {
	var b strings.Builder
	mod, settings := "(unknown)", map[string]string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		mod = bi.Main.Path + " " + bi.Main.Version
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
	}
	fmt.Fprintf(&b, "ledger %s\n", mod)
	if rev := settings["vcs.revision"]; rev != "" {
		if settings["vcs.modified"] == "true" {
			rev += " (modified)"
		}
		fmt.Fprintf(&b, "revision: %s\n", rev)
	}
	if t := settings["vcs.time"]; t != "" {
		fmt.Fprintf(&b, "commit time: %s\n", t)
	}
	fmt.Fprintf(&b, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return b.String()
}
