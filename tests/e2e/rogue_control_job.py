"""Another Ray job of the session's cluster: finds the session's control actor by listing named actors and calls
every method that changes it without the session key, then ``request`` with a token of its own; prints the
answers as JSON (``refused`` for a `PermissionError`). Argument: the cluster's address (default: RAY_ADDRESS)."""

import json
import sys

import ray

CHANGING_CALLS = {
    "open_requests": ("guess", "s", "attacker-token-0123456789abcdef", "h", 1),
    "request_pause": (None,),
    "cancel_pause": ("guess",),
    "release": ("",),
    "acknowledge": ("guess", "trial_1", 3),
    "note": ("guess", "trial_1", "planted"),
    "next_request": ("guess", 0.01),
    "close_requests": (None,),
}


def main() -> None:
    ray.init(address=sys.argv[1] if len(sys.argv) > 1 else None, log_to_driver=False)
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith("lightning_bohb_control_")]
    actor = ray.get_actor(names[0], namespace="lightning_bohb")
    answers = {}
    for name, args in CHANGING_CALLS.items():
        try:
            answers[name] = repr(ray.get(getattr(actor, name).remote(*args), timeout=60))
        except ray.exceptions.RayTaskError as err:
            answers[name] = "refused" if isinstance(err.as_instanceof_cause(), PermissionError) else repr(err)
    answers["request"] = repr(ray.get(actor.request.remote("attacker-token-0123456789abcdef", "pause"), timeout=60))
    print(json.dumps(answers))


if __name__ == "__main__":
    main()
