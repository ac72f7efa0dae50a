package deploy

import (
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/idgraph/idgraph/internal/backends"
)

// imageUID is the image's USER, which the run test takes when it can.
const imageUID = 65532

// TestImageRunsReadOnly runs the binary built as the Dockerfile builds it,
// with the image's environment, its /data replaced by a temporary
// directory and its working directory unwritable: as the image's user
// where the test runs as root (so the kernel refuses every write outside
// the volume), else as the test's user with the working directory mode
// 0555. It answers /readyz and the image's own HEALTHCHECK command, on
// the embedded store and on Neo4j (as the compose file runs it), and
// writes nothing outside the volume.
func TestImageRunsReadOnly(t *testing.T) {
	im := loadImage(t)
	bin := imageBinary(t)
	for _, b := range []string{"embedded", "neo4j"} {
		t.Run(b, func(t *testing.T) {
			root := t.TempDir()
			// t.TempDir's directories are 0700: let the image's user in.
			for _, d := range []string{filepath.Dir(root), root} {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			data, cwd := filepath.Join(root, "data"), filepath.Join(root, "cwd")
			for _, d := range []string{filepath.Join(data, "tmp"), cwd} {
				if err := os.MkdirAll(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(cwd, 0o555); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{}
			for k, v := range im.env {
				if strings.HasPrefix(v, dataDir+"/") {
					v = data + strings.TrimPrefix(v, dataDir)
				}
				env[k] = v
			}
			_, port, _ := net.SplitHostPort(im.env["IDGRAPH_ADDR"])
			addr := freeLoopback(t)
			// The image listens on every interface; here loopback only,
			// with the image's port replaced by a free one.
			env["IDGRAPH_ADDR"] = addr
			if b == "neo4j" {
				backends.OpenNeo4j(t) // locks and empties the shared database
				env["IDGRAPH_STORE"] = neo4jDSN(t)
			}
			p := start(t, bin, cwd, data, env, im.cmd)
			waitReady(t, p, addr)
			// The HEALTHCHECK as the image runs it: its flags, its
			// environment (the listen address with the image's port
			// replaced).
			hc := exec.Command(bin, im.health[1:]...)
			hc.Dir, hc.Env = cwd, envList(env)
			asImageUser(hc, data)
			if out, err := hc.CombinedOutput(); err != nil {
				t.Errorf("HEALTHCHECK %v (port %s → %s): %v\n%s", im.health, port, addr, err, out)
			}
			p.stop(t)
			if entries, err := os.ReadDir(cwd); err != nil || len(entries) > 0 {
				t.Errorf("the working directory holds %v (%v); every write belongs in the volume", entries, err)
			}
			written := map[string]bool{}
			filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
				if rel, err := filepath.Rel(data, path); err == nil && rel != "." && !strings.Contains(rel, "/") {
					written[rel] = true
				}
				return nil
			})
			want := []string{filepath.Base(env["IDGRAPH_PEPPER_FILE"])}
			if b == "embedded" {
				want = append(want, filepath.Base(env["IDGRAPH_STORE"]))
			}
			for _, w := range want {
				if !written[w] {
					t.Errorf("the volume holds %v; want %s in it", written, w)
				}
			}
			t.Logf("%s: ready as uid %d; the volume holds %v", b, p.uid, keys(written))
		})
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// proc is a running idgraph serve.
type proc struct {
	cmd  *exec.Cmd
	log  string // the file its stdout and stderr go to
	uid  int
	done chan error
}

// output is what the server has written so far.
func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// start runs bin with args in cwd, with only env (and PATH-free: the
// image has no PATH to speak of); as the image's user where it can, given
// the volume (data) to hand it.
func start(t *testing.T, bin, cwd, data string, env map[string]string, args []string) *proc {
	t.Helper()
	p := &proc{log: filepath.Join(t.TempDir(), "serve.log"), uid: os.Getuid(), done: make(chan error, 1)}
	out, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close() // the child holds its own descriptor
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir, p.cmd.Env = cwd, envList(env)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if data != "" && asImageUser(p.cmd, data) {
		p.uid = imageUID
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// asImageUser makes cmd run as the image's user when the test runs as
// root, giving it the volume; it reports whether it did.
func asImageUser(cmd *exec.Cmd, data string) bool {
	if os.Getuid() != 0 {
		return false
	}
	filepath.WalkDir(data, func(path string, _ fs.DirEntry, _ error) error {
		return os.Lchown(path, imageUID, imageUID)
	})
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: imageUID, Gid: imageUID}}
	return true
}

func envList(env map[string]string) []string {
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func waitReady(t *testing.T, p *proc, addr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			t.Fatalf("idgraph serve exited: %v\n%s", err, p.output())
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("idgraph serve not ready after 60 s:\n%s", p.output())
}

// stop ends the server as `docker stop` does (SIGTERM) and fails unless
// it exits cleanly.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("idgraph serve after SIGTERM: %v\n%s", err, p.output())
		}
	case <-time.After(20 * time.Second):
		t.Errorf("idgraph serve still running 20 s after SIGTERM")
	}
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func neo4jDSN(t *testing.T) string {
	t.Helper()
	uri, user, pass := backends.Neo4jURI(t)
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(fmt.Errorf("NEO4J_URI: %w", err))
	}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return u.String()
}
