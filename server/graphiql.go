package server

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/99designs/gqlgen/graphql/playground"
)

// graphiqlPage renders gqlgen's GraphiQL page (dev mode only) with the
// headers editor kept out of the browser's storage: gqlgen hard-codes
// shouldPersistHeaders: true, so an API key pasted into the headers
// editor (Authorization: Bearer idg_admin_…) stayed in localStorage for
// any script on the origin, and anyone at the browser, to read. The page
// no longer persists headers, hides the setting that would, and drops
// headers an older page stored. A page whose text has changed so that
// the rewrite no longer applies is an error, never served as it is.
func graphiqlPage(endpoint string) (http.HandlerFunc, error) {
	rec := &pageBuffer{header: http.Header{}}
	playground.Handler("idgraph", endpoint)(rec, &http.Request{})
	page := rec.body.Bytes()
	for _, r := range []struct{ old, new string }{
		{"shouldPersistHeaders: true,", "shouldPersistHeaders: false,\n          showPersistHeadersSettings: false,"},
		{"const fetcher = GraphiQL.createFetcher(", forgetHeaders + "const fetcher = GraphiQL.createFetcher("},
	} {
		if bytes.Count(page, []byte(r.old)) != 1 {
			return nil, fmt.Errorf("graphiql: gqlgen's page no longer holds %q: review the header storage rewrite", r.old)
		}
		page = bytes.Replace(page, []byte(r.old), []byte(r.new), 1)
	}
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(page)
	}, nil
}

// forgetHeaders drops headers an older page stored: the headers editor's
// own key, and each saved tab's headers (the tabs keep their queries).
const forgetHeaders = `for (const k of Object.keys(localStorage)) {
        if (k.endsWith('graphiql:headers')) localStorage.removeItem(k);
        if (k.endsWith('graphiql:tabState')) {
          try {
            const s = JSON.parse(localStorage.getItem(k));
            for (const t of (s && s.tabs) || []) t.headers = null;
            localStorage.setItem(k, JSON.stringify(s));
          } catch (e) { localStorage.removeItem(k); }
        }
      }
      `

// pageBuffer is an in-memory ResponseWriter for rendering a page once.
type pageBuffer struct {
	header http.Header
	body   bytes.Buffer
}

func (b *pageBuffer) Header() http.Header         { return b.header }
func (b *pageBuffer) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *pageBuffer) WriteHeader(int)             {}
