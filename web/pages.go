package web

import (
	"embed"
	"io/fs"
	"net/http"
)

// static holds the lobby and room pages, their script and style.
//
//go:embed static
var static embed.FS

func (s *Server) pageRoutes(m *http.ServeMux) {
	files, _ := fs.Sub(static, "static") // the directory is embedded above
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(files)))
	m.HandleFunc("GET /{$}", servePage(files, "index.html"))
	m.HandleFunc("GET /match/{match_id}", servePage(files, "match.html"))
}

// servePage serves one embedded HTML page. The room page is the same for
// every id; its script reads the id from the URL and asks the API.
func servePage(files fs.FS, name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
		http.ServeFileFS(w, r, files, name)
	}
}
