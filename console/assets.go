package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
)

// asset is an embedded file, with its gzip form and ETag.
type asset struct {
	raw, gz     []byte
	contentType string
	etag        string
}

var (
	assetsOnce sync.Once
	assetFiles map[string]*asset
)

// assetHandler serves the embedded assets, gzip-compressed when the
// browser accepts it (compressed once, at first use), with an ETag so a
// reload costs a 304. Anything not embedded is a 404.
func assetHandler() http.Handler {
	assetsOnce.Do(func() {
		assetFiles = map[string]*asset{}
		_ = fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			raw, err := fs.ReadFile(assets, p)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			_, _ = zw.Write(raw)
			_ = zw.Close()
			sum := sha256.Sum256(raw)
			ct := mime.TypeByExtension(path.Ext(p))
			if ct == "" {
				ct = "application/octet-stream"
			}
			assetFiles[strings.TrimPrefix(p, "assets/")] = &asset{raw: raw, gz: buf.Bytes(), contentType: ct,
				etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
			return nil
		})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := assetFiles[r.PathValue("file")]
		if a == nil {
			http.Error(w, "404 page not found", http.StatusNotFound)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("ETag", a.etag)
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("Vary", "Accept-Encoding")
		if r.Header.Get("If-None-Match") == a.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		body := a.raw
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			h.Set("Content-Encoding", "gzip")
			body = a.gz
		}
		_, _ = w.Write(body)
	})
}
