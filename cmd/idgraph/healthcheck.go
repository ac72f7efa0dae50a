package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"
)

// runHealthcheck asks a running server on this host whether it is ready
// and fails otherwise: the container image has no shell or curl, so its
// HEALTHCHECK runs the binary itself.
func runHealthcheck(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	addr := fs.String("addr", env("IDGRAPH_ADDR", "127.0.0.1:8080"), "the server's listen address, as given to serve (a wildcard host is asked on loopback)")
	path := fs.String("path", "/readyz", "the path to ask: /readyz (the store answers too) or /healthz (the process answers)")
	timeout := fs.Duration("timeout", 3*time.Second, "time limit of the request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := healthURL(*addr, *path)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", u, resp.Status)
	}
	return nil
}

// healthURL is the URL of path on the server listening on addr: a
// listener on every interface (":8080", "0.0.0.0:8080", "[::]:8080") is
// reached on loopback.
func healthURL(addr, path string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--addr %q: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	if len(path) == 0 || path[0] != '/' {
		return "", fmt.Errorf("--path %q: want an absolute path such as /readyz", path)
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}
