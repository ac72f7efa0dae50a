// Package deploy holds the checks of the container image (../Dockerfile)
// and the compose file (compose.yaml) that run without a container engine:
// `go test ./deploy/` parses both, asserts the hardening they promise,
// and builds and runs the binary as the image does. docs/deployment.md
// describes them.
package deploy
