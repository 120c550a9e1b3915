package site

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var staticFiles embed.FS

// asset is one embedded file under a content-hashed name ("site.1a2b3c4d5e6f7a8b.css"),
// so it can be cached for a year: a new version is a new URL.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// assetSet is the hashed view of the static files.
type assetSet struct {
	byURL map[string]*asset // hashed name -> file
	urls  map[string]string // file name -> /assets/<hashed name>, for templates
}

var contentTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8",
	".svg": "image/svg+xml",
}

// builtAt is the Last-Modified of every asset: the binary's start, since the
// files are part of it (the ETag, their content hash, is the stronger validator).
var builtAt = time.Now().UTC().Truncate(time.Second)

func loadAssets() *assetSet {
	entries, err := staticFiles.ReadDir("static")
	if err != nil {
		panic("site: " + err.Error())
	}
	set := &assetSet{byURL: map[string]*asset{}, urls: map[string]string{}}
	for _, e := range entries {
		body, err := staticFiles.ReadFile("static/" + e.Name())
		if err != nil {
			panic("site: " + err.Error())
		}
		ext := path.Ext(e.Name())
		ct, ok := contentTypes[ext]
		if !ok {
			panic("site: no content type for " + e.Name())
		}
		sum := sha256.Sum256(body)
		short := hex.EncodeToString(sum[:8])
		name := strings.TrimSuffix(e.Name(), ext) + "." + short + ext
		set.byURL[name] = &asset{body: body, contentType: ct, etag: `"` + short + `"`}
		set.urls[e.Name()] = "/assets/" + name
	}
	return set
}

// asset serves an embedded file by its hashed name, with ETag and Last-Modified
// (so If-None-Match and If-Modified-Since answer 304) and a year of caching.
// A name is looked up in a map, never on a file system: "..", "/" or encoded
// tricks simply miss.
func (s *Site) asset(w http.ResponseWriter, r *http.Request) {
	a := s.assets.byURL[r.PathValue("name")]
	if a == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", builtAt, bytes.NewReader(a.body))
}
