package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/goccy/go-yaml"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd   string // upper case: FROM, RUN, ...
	args  string
	stage int // index of the FROM it belongs to
	line  int
}

// parseDockerfile reads the instructions of a Dockerfile: comments and
// parser directives dropped, lines ending in a backslash joined.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	stage, cur, start := -1, "", 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cur == "" {
			start = n
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur += s + " "
			continue
		}
		cur += line
		cmd, args, _ := strings.Cut(cur, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		out = append(out, instruction{cmd: cmd, args: strings.Join(strings.Fields(args), " "), stage: stage, line: start})
		cur = ""
	}
	if cur != "" {
		t.Fatalf("%s: a continuation line ends the file", path)
	}
	return out
}

// execForm reads a JSON-array argument (ENTRYPOINT ["/idgraph"]); the
// shell form needs a shell, which the image has not.
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var v []string
	if err := yaml.Unmarshal([]byte(in.args), &v); err != nil || !strings.HasPrefix(in.args, "[") {
		t.Fatalf("Dockerfile:%d: %s %s: want the exec form [\"…\"] (the image has no shell)", in.line, in.cmd, in.args)
	}
	return v
}

// words splits a shell command line into words, honouring quotes (no
// expansions: the build's RUN lines use none).
func words(s string) []string {
	var out []string
	var w strings.Builder
	var quote rune
	inWord := false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				out = append(out, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, w.String())
	}
	return out
}

// envPairs reads ENV's KEY=VALUE pairs (quotes removed).
func envPairs(args string) map[string]string {
	m := map[string]string{}
	for _, w := range words(args) {
		if k, v, ok := strings.Cut(w, "="); ok {
			m[k] = v
		}
	}
	return m
}

// image is the parsed Dockerfile: what the checks and the run test use.
type image struct {
	final      []instruction // the last stage's instructions
	buildEnv   map[string]string
	buildCmd   []string // the build stage's `go build …` words
	env        map[string]string
	entrypoint []string
	cmd        []string
	health     []string
	volumes    []string
	expose     []string
	user       string
	froms      []string
}

func loadImage(t *testing.T) image {
	t.Helper()
	ins := parseDockerfile(t, "../Dockerfile")
	im := image{buildEnv: map[string]string{}, env: map[string]string{}}
	last := ins[len(ins)-1].stage
	for _, in := range ins {
		switch {
		case in.cmd == "FROM":
			im.froms = append(im.froms, in.args)
		case in.cmd == "RUN" && strings.Contains(in.args, "go build"):
			ws := words(in.args)
			i := slices.Index(ws, "go")
			for _, w := range ws[:i] { // VAR=value before the command
				if k, v, ok := strings.Cut(w, "="); ok {
					im.buildEnv[k] = v
				}
			}
			im.buildCmd = ws[i:]
		case in.cmd == "ENV" && in.stage < last && im.buildCmd == nil:
			for k, v := range envPairs(in.args) {
				im.buildEnv[k] = v
			}
		}
		if in.stage != last {
			continue
		}
		im.final = append(im.final, in)
		switch in.cmd {
		case "ENV":
			for k, v := range envPairs(in.args) {
				im.env[k] = v
			}
		case "ENTRYPOINT":
			im.entrypoint = execForm(t, in)
		case "CMD":
			im.cmd = execForm(t, in)
		case "HEALTHCHECK":
			_, c, ok := strings.Cut(in.args, "CMD ")
			if !ok {
				t.Fatalf("Dockerfile:%d: HEALTHCHECK without CMD", in.line)
			}
			im.health = execForm(t, instruction{cmd: "HEALTHCHECK CMD", args: c, line: in.line})
		case "VOLUME":
			if strings.HasPrefix(in.args, "[") {
				im.volumes = append(im.volumes, execForm(t, in)...)
			} else {
				im.volumes = append(im.volumes, strings.Fields(in.args)...)
			}
		case "EXPOSE":
			im.expose = append(im.expose, strings.Fields(in.args)...)
		case "USER":
			im.user = in.args
		}
	}
	if im.buildCmd == nil {
		t.Fatal("Dockerfile: no RUN … go build in a build stage")
	}
	return im
}

// goVersion is go.mod's go directive.
func goVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod: no go directive")
	}
	return string(m[1])
}

var (
	// secretName is an environment variable or build argument that holds
	// a credential (a *_FILE variable names a file, which is fine).
	secretName = regexp.MustCompile(`(?i)(PASSWORD|PASS|SECRET|PEPPER|TOKEN|KEY|AUTH)$`)
	// interpolation is a compose variable: the value comes from the
	// operator's environment at `up`, never from the file.
	interpolation = regexp.MustCompile(`^\$\{[A-Z_][A-Z0-9_]*(:?[?-][^}]*)?\}$`)
	anyVariable   = regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)(:?[?-][^}]*)?\}`)
	versioned     = regexp.MustCompile(`:[^:@/]*\d+\.\d+`)
)

// pinned reports whether an image reference names one version: a digest,
// or a tag carrying a version number (never latest or a bare name).
func pinned(ref string) bool {
	return ref == "scratch" || strings.Contains(ref, "@sha256:") || versioned.MatchString(ref)
}

// nonRoot reports whether a USER value is a numeric non-zero uid (and
// gid): a name needs /etc/passwd, and Kubernetes' runAsNonRoot can only
// check a number.
func nonRoot(user string) bool {
	uid, gid, hasGid := strings.Cut(user, ":")
	u, err := strconv.Atoi(uid)
	if err != nil || u == 0 {
		return false
	}
	if hasGid {
		g, err := strconv.Atoi(gid)
		return err == nil && g != 0
	}
	return true
}

func TestDockerfile(t *testing.T) {
	im := loadImage(t)
	if len(im.froms) < 2 {
		t.Errorf("Dockerfile: %d stages; want a multi-stage build", len(im.froms))
	}
	for _, f := range im.froms {
		ref := strings.Fields(f)[0]
		if !pinned(ref) {
			t.Errorf("Dockerfile: FROM %s is not pinned to a version or digest", ref)
		}
	}
	build := strings.Fields(im.froms[0])[0]
	if want := "golang:" + goVersion(t); !strings.HasPrefix(build, want) {
		t.Errorf("Dockerfile: build stage FROM %s; want %s… (go.mod's toolchain)", build, want)
	}
	final := strings.Fields(im.froms[len(im.froms)-1])[0]
	if final != "scratch" && !strings.HasPrefix(final, "gcr.io/distroless/static") {
		t.Errorf("Dockerfile: final stage FROM %s; want scratch or distroless static", final)
	}
	if im.buildEnv["CGO_ENABLED"] != "0" {
		t.Errorf("Dockerfile: the go build runs with CGO_ENABLED=%q; want 0 (a static binary)", im.buildEnv["CGO_ENABLED"])
	}
	if !nonRoot(im.user) {
		t.Errorf("Dockerfile: final USER %q; want a numeric non-root uid:gid", im.user)
	}
	if len(im.volumes) != 1 || im.volumes[0] != dataDir {
		t.Errorf("Dockerfile: VOLUME %v; want exactly [%s]", im.volumes, dataDir)
	}
	// Every path the server writes is in the volume, so the root file
	// system can be read-only.
	for _, k := range []string{"IDGRAPH_STORE", "IDGRAPH_PEPPER_FILE", "TMPDIR"} {
		if v := im.env[k]; !strings.HasPrefix(v, dataDir+"/") {
			t.Errorf("Dockerfile: ENV %s=%q; want a path under %s", k, v, dataDir)
		}
	}
	_, port, err := net.SplitHostPort(im.env["IDGRAPH_ADDR"])
	if err != nil {
		t.Errorf("Dockerfile: ENV IDGRAPH_ADDR=%q: %v", im.env["IDGRAPH_ADDR"], err)
	}
	if host, _, _ := net.SplitHostPort(im.env["IDGRAPH_ADDR"]); host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("Dockerfile: IDGRAPH_ADDR=%q listens on %s only; a container must listen on every interface", im.env["IDGRAPH_ADDR"], host)
	}
	if !slices.Equal(im.expose, []string{port}) && !slices.Equal(im.expose, []string{port + "/tcp"}) {
		t.Errorf("Dockerfile: EXPOSE %v; want the listen port %s", im.expose, port)
	}
	checkNoSecrets(t, "Dockerfile ENV", im.env)
	for _, in := range parseDockerfile(t, "../Dockerfile") {
		if in.cmd == "ARG" || in.cmd == "ENV" {
			for k, v := range envPairs(in.args) {
				if secretName.MatchString(k) && v != "" {
					t.Errorf("Dockerfile:%d: %s %s bakes a secret into the image", in.line, in.cmd, k)
				}
			}
		}
		if in.cmd == "COPY" || in.cmd == "ADD" {
			if strings.Contains(in.args, ".pepper") || strings.Contains(in.args, ".env") || strings.Contains(in.args, "idgraph-data") {
				t.Errorf("Dockerfile:%d: %s %s copies a secret or a store into the image", in.line, in.cmd, in.args)
			}
		}
	}
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "*.pepper", "idgraph-data*", ".env", "*.erasures.jsonl"} {
		if !slices.Contains(strings.Fields(string(ignore)), want) {
			t.Errorf(".dockerignore lacks %s: the build context (COPY . .) could carry it into the image", want)
		}
	}

	// The commands are the real binary's: every flag exists, every
	// IDGRAPH_ variable is read.
	if len(im.entrypoint) != 1 || !strings.HasPrefix(im.entrypoint[0], "/") {
		t.Fatalf("Dockerfile: ENTRYPOINT %v; want the binary's absolute path alone", im.entrypoint)
	}
	bin := im.entrypoint[0]
	checkCommand(t, "Dockerfile CMD", im.cmd, "serve")
	if len(im.health) < 2 || im.health[0] != bin {
		t.Fatalf("Dockerfile: HEALTHCHECK CMD %v; want %s healthcheck (no shell or curl in the image)", im.health, bin)
	}
	checkCommand(t, "Dockerfile HEALTHCHECK", im.health[1:], "healthcheck")
	checkEnvNames(t, "Dockerfile", im.env)
}

// dataDir is the image's one volume.
const dataDir = "/data"

// checkNoSecrets fails for a credential written into a file: a
// secret-named variable must be empty or come from the operator's
// environment (${VAR}), and a store URL's password likewise.
func checkNoSecrets(t *testing.T, where string, env map[string]string) {
	t.Helper()
	for k, v := range env {
		if strings.HasSuffix(k, "_FILE") || v == "" {
			continue
		}
		if k == "NEO4J_AUTH" {
			v = strings.TrimPrefix(v, "neo4j/")
		}
		if secretName.MatchString(k) && !interpolation.MatchString(v) {
			t.Errorf("%s: %s=%q holds a literal secret; want ${VARIABLE} from the environment", where, k, v)
		}
		if u, err := url.Parse(expand(v)); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok && !strings.HasPrefix(p, "env.") {
				t.Errorf("%s: %s holds a literal password in its URL; want ${VARIABLE}", where, k)
			}
		}
	}
}

// checkCommand fails unless args is the subcommand want with flags the
// real binary's subcommand accepts.
func checkCommand(t *testing.T, where string, args []string, want string) {
	t.Helper()
	if len(args) == 0 || args[0] != want {
		t.Errorf("%s: %v; want the %s subcommand", where, args, want)
		return
	}
	known := flagsOf(t, want)
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !known[name] {
			t.Errorf("%s: idgraph %s has no flag %s", where, want, a)
		}
	}
}

// checkEnvNames fails for an IDGRAPH_ variable that no flag of the
// binary reads: a misspelt one is silently ignored.
func checkEnvNames(t *testing.T, where string, env map[string]string) {
	t.Helper()
	src := commandSource(t)
	for k := range env {
		if strings.HasPrefix(k, "IDGRAPH_") && !strings.Contains(src, strconv.Quote(k)) {
			t.Errorf("%s: %s is read by no flag of idgraph", where, k)
		}
	}
}

func commandSource(t *testing.T) string {
	t.Helper()
	files, err := filepath.Glob("../cmd/idgraph/*.go")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

var helpFlag = regexp.MustCompile(`(?m)^\s+-([A-Za-z0-9][A-Za-z0-9-]*)`)

// flagsOf runs the binary built as the image builds it with `SUB -h` and
// reads the flags it lists.
func flagsOf(t *testing.T, sub string) map[string]bool {
	t.Helper()
	out, _ := exec.Command(imageBinary(t), sub, "-h").CombinedOutput() // -h exits 1 after the list
	known := map[string]bool{}
	for _, m := range helpFlag.FindAllStringSubmatch(string(out), -1) {
		known[m[1]] = true
	}
	if len(known) == 0 {
		t.Fatalf("idgraph %s -h lists no flags:\n%s", sub, out)
	}
	return known
}

var built struct {
	once sync.Once
	path string
	err  error
}

// imageBinary builds the binary exactly as the Dockerfile's build stage
// does (its ENV and inline variables, its go build words) into a
// temporary directory, once per test process.
func imageBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		im := loadImage(t)
		dir, err := os.MkdirTemp("", "idgraph-image")
		if err != nil {
			built.err = err
			return
		}
		os.Chmod(dir, 0o755) // the run test's non-root user executes it
		built.path = filepath.Join(dir, "idgraph")
		args := slices.Clone(im.buildCmd[1:])
		i := slices.Index(args, "-o")
		if i < 0 || i+1 >= len(args) {
			built.err = fmt.Errorf("Dockerfile: go build without -o: %v", im.buildCmd)
			return
		}
		args[i+1] = built.path
		cmd := exec.Command("go", args...)
		cmd.Dir = ".." // the build context: the module's root
		cmd.Env = os.Environ()
		for k, v := range im.buildEnv {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// compose is the part of a compose file the checks read.
type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     []string          `yaml:"command"`
		User        string            `yaml:"user"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		ReadOnly    bool              `yaml:"read_only"`
		CapDrop     []string          `yaml:"cap_drop"`
		SecurityOpt []string          `yaml:"security_opt"`
		DependsOn   map[string]any    `yaml:"depends_on"`
		Privileged  bool              `yaml:"privileged"`
		CapAdd      []string          `yaml:"cap_add"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

const composeFile = "compose.yaml"

func TestCompose(t *testing.T) {
	b, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	im := loadImage(t)
	for _, name := range []string{"idgraph", "neo4j"} {
		s, ok := c.Services[name]
		if !ok {
			t.Fatalf("%s: no service %s", composeFile, name)
		}
		where := composeFile + ": " + name
		if !s.ReadOnly {
			t.Errorf("%s: read_only is not true", where)
		}
		if !nonRoot(s.User) {
			t.Errorf("%s: user %q; want a numeric non-root uid:gid", where, s.User)
		}
		if !slices.Contains(s.CapDrop, "ALL") || len(s.CapAdd) > 0 || s.Privileged {
			t.Errorf("%s: cap_drop %v, cap_add %v, privileged %v; want every capability dropped", where, s.CapDrop, s.CapAdd, s.Privileged)
		}
		if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: security_opt %v lacks no-new-privileges:true", where, s.SecurityOpt)
		}
		if len(s.Volumes) != 1 {
			t.Errorf("%s: volumes %v; want exactly one", where, s.Volumes)
		} else if vol, _, _ := strings.Cut(s.Volumes[0], ":"); c.Volumes == nil || !hasKey(c.Volumes, vol) {
			t.Errorf("%s: volume %s is not a named volume of the file (a bind mount's owner is the host's business)", where, s.Volumes[0])
		}
		if s.Image != "" && !pinned(s.Image) && s.Build == nil {
			t.Errorf("%s: image %s is not pinned to a version or digest", where, s.Image)
		}
		checkNoSecrets(t, where, s.Environment)
	}
	neo, idg := c.Services["neo4j"], c.Services["idgraph"]
	if !strings.HasPrefix(neo.Image, "neo4j:5.") || !strings.Contains(neo.Image, "community") {
		t.Errorf("%s: neo4j image %s; want Neo4j 5 Community", composeFile, neo.Image)
	}
	if !strings.HasSuffix(neo.Volumes[0], ":/data") {
		t.Errorf("%s: neo4j volume %s; want it on /data, where the image keeps its databases", composeFile, neo.Volumes[0])
	}
	if !strings.HasPrefix(neo.Environment["NEO4J_AUTH"], "neo4j/") {
		t.Errorf("%s: NEO4J_AUTH %q; want neo4j/${PASSWORD} (authentication on)", composeFile, neo.Environment["NEO4J_AUTH"])
	}
	if idg.Build == nil {
		t.Errorf("%s: idgraph is not built from the Dockerfile", composeFile)
	}
	if !strings.HasSuffix(idg.Volumes[0], ":"+dataDir) {
		t.Errorf("%s: idgraph volume %s; want it on the image's VOLUME %s", composeFile, idg.Volumes[0], dataDir)
	}
	u, err := url.Parse(expand(idg.Environment["IDGRAPH_STORE"]))
	if err != nil || u.Scheme != "bolt" && u.Scheme != "neo4j" || u.Hostname() != "neo4j" || u.Port() != "7687" {
		t.Errorf("%s: IDGRAPH_STORE %q; want bolt://neo4j:${PASSWORD}@neo4j:7687, the neo4j service", composeFile, idg.Environment["IDGRAPH_STORE"])
	} else if p, _ := u.User.Password(); "neo4j/"+p != expand(neo.Environment["NEO4J_AUTH"]) {
		t.Errorf("%s: IDGRAPH_STORE's password %q is not NEO4J_AUTH's %q", composeFile, p, expand(neo.Environment["NEO4J_AUTH"]))
	}
	if _, ok := idg.DependsOn["neo4j"]; !ok {
		t.Errorf("%s: idgraph does not depend on neo4j", composeFile)
	}
	_, port, _ := net.SplitHostPort(im.env["IDGRAPH_ADDR"])
	for _, p := range idg.Ports {
		if !strings.HasSuffix(p, ":"+port) {
			t.Errorf("%s: idgraph port %s does not reach the image's listen port %s", composeFile, p, port)
		}
	}
	checkCommand(t, composeFile+": idgraph command", idg.Command, "serve")
	checkEnvNames(t, composeFile+": idgraph", idg.Environment)
}

// expand replaces each ${VAR…} by env.VAR, which URLs can hold.
func expand(v string) string { return anyVariable.ReplaceAllString(v, "env.$1") }

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

// TestComposeConfig has Docker Compose itself parse and validate the file
// (no engine needed) where the docker CLI has its compose plugin.
func TestComposeConfig(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker CLI")
	}
	if err := exec.Command("docker", "compose", "version").Run(); err != nil {
		t.Skip("the docker CLI has no compose plugin")
	}
	cmd := exec.Command("docker", "compose", "-f", composeFile, "config", "--quiet")
	cmd.Env = append(os.Environ(), "NEO4J_PASSWORD=check-only-password")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker compose config: %v\n%s", err, out)
	}
}
