"""Server-to-server API: signed requests, durable queues, hub and follower rooms."""
