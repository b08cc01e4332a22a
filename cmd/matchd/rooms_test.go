package main

import (
	"testing"
	"time"
)

func TestParseRoomConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    roomConfig
		wantErr string
	}{
		{"defaults", nil, nil, roomConfig{readyTimeout: 30 * time.Second, cooldown: 2 * time.Minute, boost: 10}, ""},
		{"no_ready_window", nil, map[string]string{"MATCHD_READY_TIMEOUT": "0"}, roomConfig{cooldown: 2 * time.Minute, boost: 10}, ""},
		{"all_from_env", nil, map[string]string{"MATCHD_READY_TIMEOUT": "45s", "MATCHD_NO_SHOW_COOLDOWN": "5m", "MATCHD_REQUEUE_BOOST": "3"},
			roomConfig{readyTimeout: 45 * time.Second, cooldown: 5 * time.Minute, boost: 3}, ""},
		{"flags_win", []string{"-ready-timeout", "10s", "-no-show-cooldown", "0", "-requeue-boost", "0"}, map[string]string{"MATCHD_READY_TIMEOUT": "45s"},
			roomConfig{readyTimeout: 10 * time.Second}, ""},
		{"negative_ready_timeout", []string{"-ready-timeout", "-1s"}, nil, roomConfig{}, "-ready-timeout"},
		{"ready_timeout_past_ttl", []string{"-ready-timeout", "3h"}, nil, roomConfig{}, "-ready-timeout"},
		{"negative_cooldown", nil, map[string]string{"MATCHD_NO_SHOW_COOLDOWN": "-1m"}, roomConfig{}, "-no-show-cooldown"},
		{"boost_too_big", []string{"-requeue-boost", "5000"}, nil, roomConfig{}, "-requeue-boost"},
		{"bad_boost", []string{"-requeue-boost", "lots"}, nil, roomConfig{}, "requeue-boost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, ok := parseCase(t, tt.args, tt.env, tt.wantErr)
			if !ok {
				return
			}
			if cfg.room != tt.want {
				t.Errorf("room config = %+v, want %+v", cfg.room, tt.want)
			}
		})
	}
}
