package desk

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// call makes an API request with token (none when empty) and decodes the
// JSON answer.
func call(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %s", method, url, raw)
	}
	return resp.StatusCode, out
}

func TestTouchpointsAndJourneyAPI(t *testing.T) {
	_, base := startServer(t)
	tp := base + "/api/touchpoints"
	refusals := []struct {
		name, token, body string
		code              int
		msg               string
	}{
		{"no token", "", `{}`, 401, "this endpoint needs an API token: Authorization: Bearer <token>"},
		{"wrong token", "guess", `{}`, 401, "unknown API token"},
		{"not JSON", testToken, `order`, 400, "body is not a touchpoint: invalid character 'o' looking for beginning of value"},
		{"unknown field", testToken, `{"identity":"email:a@b.de","type":"order","colour":"red"}`, 400, `body is not a touchpoint: json: unknown field "colour"`},
		{"two objects", testToken, `{"identity":"email:a@b.de","type":"order"}{}`, 400, "body has data after the touchpoint"},
		{"no identity", testToken, `{"type":"order"}`, 400, `identity is missing (e.g. "email:joe@example.com")`},
		{"bad type", testToken, `{"identity":"email:a@b.de","type":"Big Order"}`, 400, `type "Big Order": want lower-case letters, digits, '.', '-', '_' (e.g. "order")`},
		{"dirigent's own type", testToken, `{"identity":"email:a@b.de","type":"identity_removed","data":{"by":"anna"}}`, 400, `type "identity_removed" is dirigent's own: what a person did to the customer's identities`},
		{"bad identity", testToken, `{"identity":"phone:12","type":"order"}`, 400, `not a usable identity: "12" is not a valid phone number`},
		{"too large", testToken, `{"identity":"email:a@b.de","type":"order","data":{"x":"` + strings.Repeat("y", 20000) + `"}}`, 400, "body larger than 16384 bytes"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, http.MethodPost, tp, tt.token, tt.body)
			if code != tt.code || body["error"] != tt.msg {
				t.Errorf("%d %v, want %d %q", code, body, tt.code, tt.msg)
			}
		})
	}

	// An order and a survey of the same person, written two ways.
	code, first := call(t, http.MethodPost, tp, testToken, `{"identity":"email:Joe+shop@Example.com","type":"order","at":"2026-11-20T10:00:00Z","data":{"order":"A-17","total":"49.90"}}`)
	if code != 201 {
		t.Fatalf("post: %d %v", code, first)
	}
	code, second := call(t, http.MethodPost, tp, testToken, `{"identity":"email:joe@example.com","type":"survey","at":"2026-11-21T10:00:00Z","data":{"score":"9"}}`)
	if code != 201 || second["customer_id"] != first["customer_id"] {
		t.Fatalf("second post: %d %v, want the same customer as %v", code, second, first)
	}
	cust := base + "/api/customers/" + jsonNumber(first["customer_id"]) + "/journey"
	code, page := call(t, http.MethodGet, cust+"?limit=1", testToken, "")
	entries, _ := page["entries"].([]any)
	if code != 200 || len(entries) != 1 || page["next"] != "2026-11-21T10:00:00Z" {
		t.Fatalf("journey page 1: %d %v", code, page)
	}
	if tp := entries[0].(map[string]any)["touchpoint"].(map[string]any); tp["type"] != "survey" {
		t.Errorf("newest entry %v", tp)
	}
	code, page = call(t, http.MethodGet, cust+"?limit=1&before="+page["next"].(string), testToken, "")
	if entries, _ := page["entries"].([]any); code != 200 || len(entries) != 1 || entries[0].(map[string]any)["touchpoint"].(map[string]any)["type"] != "order" {
		t.Errorf("journey page 2: %d %v", code, page)
	}
	for _, tt := range []struct {
		url  string
		code int
		msg  string
	}{
		{cust + "?limit=0", 400, "limit: want a number from 1 to 200"},
		{cust + "?before=yesterday", 400, "before: want an RFC 3339 time such as 2026-11-22T09:00:00Z"},
		{base + "/api/customers/joe/journey", 400, `customer id "joe": want a positive number`},
		{base + "/api/customers/999/journey", 404, "customer 999: not found"},
	} {
		if code, body := call(t, http.MethodGet, tt.url, testToken, ""); code != tt.code || body["error"] != tt.msg {
			t.Errorf("GET %s: %d %v, want %d %q", tt.url, code, body, tt.code, tt.msg)
		}
	}
	if code, _ := call(t, http.MethodGet, cust, "", ""); code != 401 {
		t.Errorf("journey without token: %d", code)
	}
}

func TestImportAPI(t *testing.T) {
	_, base := startServer(t)
	csv := "crm_id;name;phone\nK-9;Joe;030 123456\n"
	if code, _ := call(t, http.MethodPost, base+"/api/customers/import", "", csv); code != 401 {
		t.Errorf("without token: %d", code)
	}
	code, res := call(t, http.MethodPost, base+"/api/customers/import", testToken, csv)
	if code != 200 || res["created"] != 1.0 || res["rows"] != 1.0 {
		t.Errorf("import: %d %v", code, res)
	}
	if code, res := call(t, http.MethodPost, base+"/api/customers/import", testToken, "K-9;Joe\n"); code != 400 || !strings.Contains(res["error"].(string), "the first line must name the columns") {
		t.Errorf("headless file: %d %v", code, res)
	}
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func FuzzDecodeTouchpoint(f *testing.F) {
	f.Add(`{"identity":"email:joe@example.com","type":"order","at":"2026-11-20T10:00:00Z","data":{"a":"b"}}`)
	f.Add(`{"identity":"phone:030 123456","type":"survey"}`)
	f.Add(`{"type":1}`)
	f.Fuzz(func(t *testing.T, body string) {
		req, err := decodeTouchpoint(strings.NewReader(body))
		if err != nil {
			return
		}
		if req.Identity == "" || !touchpointType.MatchString(req.Type) || len(req.Data) > maxTouchpointData {
			t.Fatalf("accepted %+v", req)
		}
	})
}
