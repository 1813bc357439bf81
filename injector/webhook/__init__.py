"""The mutating admission webhook (`injector webhook`): pods annotated for secrets get an agent container.

    review.py       AdmissionReview v1 in and out, bounded
    admit.py        the decision for one pod
    annotations.py  every annotation under the prefix, parsed and checked
    planner.py      the agent's plan, its user, the containers that get the files
    checks.py       misconfigurations that expose secrets (deny/warn/off)
    access.py       the dry-run access check against the service (Access.CheckAccess)
    mutate.py       the JSON Patch
    pod.py          type-safe views of the pod JSON
    certs.py        the HTTPS certificate, reloaded when its files change
    server.py       the HTTPS server: deadlines, connection bound, graceful stop
    config.py       the settings, built once by command.py
    command.py      the command line
"""
