package desk

import (
	"fmt"
	"maps"
	"net/http"
	"slices"

	"dirigent/router"
)

// windowBoard is a queue's figures over one window.
type windowBoard struct {
	Offered      int      `json:"offered"`
	Answered     int      `json:"answered"`
	Abandoned    int      `json:"abandoned"`
	ServiceLevel *float64 `json:"service_level"` // null with nothing answered
	ASASeconds   float64  `json:"asa_seconds"`
	AbandonRate  float64  `json:"abandon_rate"`
}

func boardOf(w router.WindowStats) windowBoard {
	b := windowBoard{Offered: w.Offered, Answered: w.Answered, Abandoned: w.Abandoned, ASASeconds: w.ASA().Seconds(), AbandonRate: w.AbandonRate()}
	if sl, ok := w.ServiceLevel(); ok {
		b.ServiceLevel = &sl
	}
	return b
}

type queueBoard struct {
	Queue              string  `json:"queue"`
	Waiting            int     `json:"waiting"`
	LongestWaitSeconds float64 `json:"longest_wait_seconds"`
	// The service level aimed for, within the threshold.
	ServiceLevelTarget           float64     `json:"service_level_target"`
	ServiceLevelThresholdSeconds float64     `json:"service_level_threshold_seconds"`
	Last15m                      windowBoard `json:"last_15m"`
	Today                        windowBoard `json:"today"`
}

type agentBoard struct {
	Agent     string         `json:"agent"`
	Presence  string         `json:"presence"`
	Reason    string         `json:"reason,omitempty"`
	Busy      bool           `json:"busy"` // tasks in progress or in wrap-up
	Tasks     map[string]int `json:"tasks"`
	Held      []heldBoard    `json:"held"`
	Occupancy float64        `json:"occupancy"` // today
}

// heldBoard is a task an agent has taken or wraps up.
type heldBoard struct {
	ID         uint64 `json:"id"`
	Channel    string `json:"channel"`
	Queue      string `json:"queue"`
	Returnable bool   `json:"returnable"` // a mail or chat taken: POST …/return puts it back
}

// wallboard is what supervisors see, live.
type wallboard struct {
	Queues []queueBoard `json:"queues"`
	Agents []agentBoard `json:"agents"`
	// ByPresence counts agents: available (idle), busy, away, offline.
	ByPresence map[string]int `json:"by_presence"`
}

func (s *Server) wallboard() wallboard {
	b := wallboard{Queues: []queueBoard{}, Agents: []agentBoard{}, ByPresence: map[string]int{"available": 0, "busy": 0, "away": 0, "offline": 0}}
	for _, q := range s.deps.Router.Stats() {
		b.Queues = append(b.Queues, queueBoard{
			Queue: q.Queue, Waiting: q.Waiting, LongestWaitSeconds: q.LongestWait.Seconds(),
			ServiceLevelTarget: q.ServiceLevelTarget, ServiceLevelThresholdSeconds: q.ServiceLevelThreshold.Seconds(),
			Last15m: boardOf(q.Last15m), Today: boardOf(q.Today),
		})
	}
	held := s.deps.Router.Held()
	for _, a := range s.deps.Router.Agents() {
		ab := agentBoard{Agent: a.Agent, Presence: a.Presence.String(), Reason: a.Reason, Occupancy: a.Occupancy, Tasks: map[string]int{}, Held: []heldBoard{}}
		for _, h := range held[a.Agent] {
			ab.Held = append(ab.Held, heldBoard{ID: h.ID, Channel: h.Channel.String(), Queue: h.Queue, Returnable: h.Returnable})
		}
		for ch, n := range a.Load {
			if n > 0 {
				ab.Tasks[router.Channel(ch).String()] = n
			}
		}
		ab.Busy = len(ab.Tasks) > 0 || a.Wrapping > 0
		key := ab.Presence
		if ab.Busy && a.Presence != router.Offline {
			key = "busy"
		}
		b.ByPresence[key]++
		b.Agents = append(b.Agents, ab)
	}
	return b
}

func (s *Server) getWallboard(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.wallboard())
}

// publishWallboard pushes the wallboard to open supervisor streams at
// once, so that a change shows without waiting for the next tick.
func (s *Server) publishWallboard() {
	to := toRoles(RoleSupervisor, RoleAdmin)
	if s.events.wants(to) {
		s.events.publish(to, "wallboard", s.wallboard())
	}
}

// agentAdmin is an agent as an admin sees and changes it.
type agentAdmin struct {
	ID       string         `json:"id"`
	Skills   map[string]int `json:"skills"`
	Capacity map[string]int `json:"capacity"`
	Presence string         `json:"presence"`
	Reason   string         `json:"reason,omitempty"`
}

type queueAdmin struct {
	Name     string           `json:"name"`
	Skills   map[string]int   `json:"skills"`
	Channels []router.Channel `json:"channels"`
	Strategy string           `json:"strategy"`
}

// getAdmin is GET /api/desk/admin: skills, queues and agents.
func (s *Server) getAdmin(w http.ResponseWriter, _ *http.Request) {
	agents := []agentAdmin{}
	for _, a := range s.deps.Router.Agents() {
		capacity := map[string]int{}
		for ch, n := range a.Capacity {
			capacity[router.Channel(ch).String()] = n
		}
		agents = append(agents, agentAdmin{ID: a.Agent, Skills: a.Skills, Capacity: capacity, Presence: a.Presence.String(), Reason: a.Reason})
	}
	queues := []queueAdmin{}
	for _, q := range s.deps.Router.Queues() {
		queues = append(queues, queueAdmin{Name: q.Name, Skills: q.Skills, Channels: q.Channels, Strategy: q.Strategy.String()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"skills": s.deps.Router.Skills(), "queues": queues, "agents": agents})
}

type skillsRequest struct {
	Skills map[string]int `json:"skills"`
}

// setAgentSkills is PUT /api/desk/admin/agents/{id}/skills: the router
// applies it at once; a restart goes back to the configuration.
func (s *Server) setAgentSkills(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req skillsRequest
	if err := decodeBody(r.Body, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	skills := s.deps.Router.Skills()
	for _, name := range slices.Sorted(maps.Keys(req.Skills)) {
		if !slices.Contains(skills, name) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown skill %q (known: %v)", name, skills))
			return
		}
		if p := req.Skills[name]; p < 1 || p > 5 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("skill %s: proficiency %d out of range 1–5", name, p))
			return
		}
	}
	// The router keeps the agent's capacities, and refuses an agent it
	// does not route (never configured, or removed by a reload): 404.
	if err := s.deps.Router.SetAgentSkills(id, req.Skills); err != nil {
		writeRouterError(w, err)
		return
	}
	s.deps.Logger.Info("agent skills changed on the desk", "agent", id, "skills", req.Skills, "by", sessionOf(r).user)
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "skills": req.Skills})
}

type returnRequest struct {
	Agent string `json:"agent"` // who holds the task, as the wallboard showed
}

// returnTask is POST /api/desk/wallboard/tasks/{id}/return: a supervisor
// puts a mail or chat an agent has taken back into its queue (the agent
// is going home, or swamped); the others are offered it first.
func (s *Server) returnTask(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "task")
	if !ok {
		return
	}
	var req returnRequest
	if err := decodeBody(r.Body, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Agent == "" {
		writeError(w, http.StatusBadRequest, "agent: who holds the task, as the wallboard shows it")
		return
	}
	by := sessionOf(r).user
	if err := s.deps.Router.ReturnTask(id, req.Agent, "returned by "+by); err != nil {
		writeRouterError(w, err)
		return
	}
	s.deps.Logger.Info("task returned to its queue on the wallboard", "task", id, "by", by)
	s.publishWallboard()
	writeJSON(w, http.StatusOK, map[string]any{"id": id})
}

// setAgentPresence is PUT /api/desk/admin/agents/{id}/presence.
func (s *Server) setAgentPresence(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req presenceRequest
	if err := decodeBody(r.Body, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	p, err := s.parsePresence(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// Not routed (never configured, or removed by a reload): 404.
	if err := s.deps.Router.SetPresence(id, p, req.Reason); err != nil {
		writeRouterError(w, err)
		return
	}
	s.deps.Logger.Info("agent presence changed on the desk", "agent", id, "presence", p, "reason", req.Reason, "by", sessionOf(r).user)
	s.events.publish(toUser(id), "presence", map[string]string{"presence": p.String(), "reason": req.Reason})
	s.publishWallboard()
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "presence": p.String(), "reason": req.Reason})
}
