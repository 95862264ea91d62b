"""Workshop mode: a broken lab that stays up for trainees (lab start/shell/hint/check/status/stop)."""
