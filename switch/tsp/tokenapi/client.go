package tokenapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Client calls the provisioning API (tokenctl, termsim and tests use it).
type Client struct {
	// Admin is the switch's admin address, host:port.
	Admin string
	// Bearer is the API's bearer token.
	Bearer string
	HTTP   *http.Client
}

// APIError is a non-2xx answer from the provisioning API.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("provisioning API: %d %s", e.Status, e.Message) }

// IssueOptions are the optional parts of a token request.
type IssueOptions struct {
	Kind   Kind
	Domain Domain
}

// Issue provisions a token; the PAN travels only in the request body.
func (c *Client) Issue(ctx context.Context, pan, expiry string, o IssueOptions) (TokenJSON, error) {
	body, _ := json.Marshal(IssueJSON{PAN: pan, Expiry: expiry, Kind: o.Kind, Domain: o.Domain})
	return c.do(ctx, http.MethodPost, "/v1/tokens", body)
}

// Get shows a token (masked PAN only).
func (c *Client) Get(ctx context.Context, token string) (TokenJSON, error) {
	return c.do(ctx, http.MethodGet, "/v1/tokens/"+token, nil)
}

// Suspend, Resume and Delete change a token's status.
func (c *Client) Suspend(ctx context.Context, token string) (TokenJSON, error) {
	return c.do(ctx, http.MethodPost, "/v1/tokens/"+token+"/suspend", nil)
}

func (c *Client) Resume(ctx context.Context, token string) (TokenJSON, error) {
	return c.do(ctx, http.MethodPost, "/v1/tokens/"+token+"/resume", nil)
}

func (c *Client) Delete(ctx context.Context, token string) (TokenJSON, error) {
	return c.do(ctx, http.MethodDelete, "/v1/tokens/"+token, nil)
}

func (c *Client) do(ctx context.Context, method, path string, body []byte) (TokenJSON, error) {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.Admin+path, bytes.NewReader(body))
	if err != nil {
		return TokenJSON{}, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Bearer)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return TokenJSON{}, fmt.Errorf("calling provisioning API at %s: %w", c.Admin, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return TokenJSON{}, fmt.Errorf("reading API answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		return TokenJSON{}, &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	var out TokenJSON
	if err := json.Unmarshal(raw, &out); err != nil {
		return TokenJSON{}, fmt.Errorf("decoding API answer: %w", err)
	}
	return out, nil
}
