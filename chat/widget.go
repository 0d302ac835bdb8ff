package chat

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
)

// widgetFiles is the customer widget, served by dirigent itself: no CDN,
// nothing loaded from elsewhere.
//
//go:embed widget/widget.js widget/widget.css
var widgetFiles embed.FS

// widgetScript is widget.js with its style sheet inlined, so that one
// script tag is all a site adds.
func widgetScript() ([]byte, error) {
	js, err := widgetFiles.ReadFile("widget/widget.js")
	if err != nil {
		return nil, err
	}
	css, err := widgetFiles.ReadFile("widget/widget.css")
	if err != nil {
		return nil, err
	}
	quoted, err := json.Marshal(string(css))
	if err != nil {
		return nil, err
	}
	const mark = "/*CSS*/\"\""
	if bytes.Count(js, []byte(mark)) != 1 {
		return nil, fmt.Errorf("chat: widget.js lacks its style sheet mark")
	}
	return bytes.Replace(js, []byte(mark), quoted, 1), nil
}
