package endpoints

import (
	"bytes"
	"html/template"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/internal/nostore"
)

// serveJSON answers a GET or HEAD with body, cacheable for maxAge seconds; other methods get 405.
// Both documents are public by design, so any origin may read them: a browser app (a public client)
// fetches them itself.
func serveJSON(w http.ResponseWriter, r *http.Request, body []byte, maxAge int) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(maxAge))
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// writePage answers with tmpl executed on data, under the headers every page a person sees carries;
// csp is the page's Content-Security-Policy. The template runs into a buffer first, so that a
// failing one gives a clean 500 rather than half a page.
func writePage(w http.ResponseWriter, logger *zap.Logger, tmpl *template.Template, csp string, status int, data any) {
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		logger.Error("rendering a page failed", zap.String("template", tmpl.Name()), zap.Error(err))
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// A page may hold a CSRF token, a sign-in ticket or a person's name: no cache keeps it.
	nostore.Set(h)
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// A page's URL may hold the authorization request (state, nonce) or, from
	// verification_uri_complete, the user code: no Referer carries it away.
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
