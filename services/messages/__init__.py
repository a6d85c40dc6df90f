"""The messages context: chat messages of every room, their per-room change sequence (B7a) and the
local membership copy that lets posting skip an RPC."""
