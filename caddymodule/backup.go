package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(new(AdminBackup))
}

// backupPath is where Caddy's admin API takes a backup of the running store.
const backupPath = "/tokengate/backup"

// AdminBackup is the admin API's /tokengate/backup: a POST of {"to": "<absolute path>"} writes a
// copy of the running tokengate app's embedded store there (store.Backups) and answers
// {"store": …, "to": …}. The admin API is Caddy's own, with its own access control; what it may
// do already includes writing any file Caddy can.
type AdminBackup struct {
	ctx caddy.Context
}

// CaddyModule implements caddy.Module.
func (*AdminBackup) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "admin.api.tokengate", New: func() caddy.Module { return new(AdminBackup) }}
}

// Provision implements caddy.Provisioner: ctx is the configuration the admin API serves, whose
// tokengate app is looked up at each request, once it is running.
func (a *AdminBackup) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	return nil
}

// Routes implements caddy.AdminRouter.
func (a *AdminBackup) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: backupPath, Handler: caddy.AdminHandlerFunc(a.backup)}}
}

// backupRequest is the body of a POST to backupPath.
type backupRequest struct {
	To string `json:"to"`
}

func (a *AdminBackup) backup(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed, Err: fmt.Errorf("method %s not allowed: POST {\"to\": \"<absolute path>\"}", r.Method)}
	}
	var req backupRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: fmt.Errorf("body: %w; want {\"to\": \"<absolute path>\"}", err)}
	}
	running, err := a.ctx.AppIfConfigured("tokengate")
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusNotFound, Err: fmt.Errorf("no tokengate app is running: %w", err)}
	}
	app := running.(*App)
	backups := app.shared.backups
	if backups == nil {
		return caddy.APIError{HTTPStatus: http.StatusBadRequest,
			Err: fmt.Errorf("store %s is not backed up by tokengate: only the embedded stores (pebble, bolt) are; Redis keeps its own (RDB, AOF), and a memory store holds nothing that lasts", app.storeName)}
	}
	if err := backups.Backup(req.To); err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, fs.ErrInvalid) || errors.Is(err, fs.ErrExist) || errors.Is(err, fs.ErrNotExist) {
			status = http.StatusBadRequest // the path is relative, exists, or its directory does not
		}
		return caddy.APIError{HTTPStatus: status, Err: err}
	}
	app.audit.StoreBackedUp(app.storeName, req.To)
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(map[string]string{"store": app.storeName, "to": req.To})
}

var (
	_ caddy.AdminRouter = (*AdminBackup)(nil)
	_ caddy.Provisioner = (*AdminBackup)(nil)
)
