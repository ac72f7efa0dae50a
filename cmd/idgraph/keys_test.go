package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var keyPattern = regexp.MustCompile(`idg_[a-z]+_[0-9A-Za-z]{8}_[0-9A-Za-z]{38}`)

// idgraph runs the binary and returns its stdout and stderr apart.
func idgraph(t *testing.T, wantOK bool, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if (err == nil) != wantOK {
		t.Fatalf("idgraph %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, &stdout, &stderr)
	}
	return stdout.String(), stderr.String()
}

// TestKeysCommands: init prints the first admin key once on stdout (the
// pepper file beside the store, 0600); serve on that store prints no key;
// keys create/list/rotate/revoke work with it; the write key ingests as a
// Segment writeKey until revoked; no secret reaches serve's log.
func TestKeysCommands(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "data")
	out, errOut := idgraph(t, true, "init", "--store", store)
	admin := keyPattern.FindString(out)
	if !strings.HasPrefix(admin, "idg_admin_") || strings.Contains(errOut, admin) {
		t.Fatalf("init: stdout %q, stderr %q", out, errOut)
	}
	if st, err := os.Stat(store + ".pepper"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("pepper file: %v, %v", st, err)
	}
	if out, _ := idgraph(t, true, "init", "--store", store); keyPattern.MatchString(out) {
		t.Fatalf("a second init printed a key: %s", out)
	}

	addr := freeAddr(t)
	p := startServeArgs(t, addr, "--store", store)
	defer func() {
		p.stop(t)
		if m := keyPattern.FindAllString(p.log.String(), -1); len(m) > 0 {
			t.Errorf("serve printed %d keys:\n%s", len(m), p.log)
		}
	}()
	url := "http://" + addr
	srv := []string{"--server", url, "--key", admin}
	out, _ = idgraph(t, true, append([]string{"keys", "create", "--role", "write", "--name", "shop"}, srv...)...)
	write := keyPattern.FindString(out)
	if !strings.HasPrefix(write, "idg_write_") {
		t.Fatalf("keys create: %s", out)
	}
	id := strings.Split(write, "_")[2]
	track := func(key string) int { return postAPI(t, url+"/v1/track", key, `{"userId":"u1","event":"x"}`) }
	if code := track(write); code != 200 {
		t.Fatalf("the new write key: %d", code)
	}
	out, _ = idgraph(t, true, append([]string{"keys", "list"}, srv...)...)
	if !strings.Contains(out, id) || !strings.Contains(out, "shop") || keyPattern.MatchString(out) {
		t.Fatalf("keys list:\n%s", out)
	}
	_, errOut = idgraph(t, false, "keys", "create", "--role", "admin", "--server", url, "--key", write)
	if !strings.Contains(errOut, "this is a write key") {
		t.Fatalf("a write key made a key: %s", errOut)
	}
	out, _ = idgraph(t, true, append([]string{"keys", "rotate", "--grace", "1h", id}, srv...)...)
	next := keyPattern.FindString(out)
	if code := track(next); code != 200 || track(write) != 200 {
		t.Fatalf("after rotation with grace: new %d", code)
	}
	idgraph(t, true, append([]string{"keys", "revoke", id}, srv...)...)
	if code := track(write); code != 401 {
		t.Fatalf("revoked: %d", code)
	}
}
