# Sourced by bench/run and bench/store (from the repository's root): starts the Django + DRF
# baseline the way those scripts start classcast. Needs their `free_port` and `pids`.
#
# django_start DATABASE-URL SLIDES-JSON
#   creates the tables (`migrate`, then `--run-syncdb`), a teacher with a DRF token and one lesson of
#   SLIDES-JSON, then serves it with gunicorn: BASELINE_WORKERS sync workers (default: as many
#   as cores, as classcast's runtime has one worker thread per core), DEBUG off. Sets
#   django_base, django_token and django_lesson; the server's pid goes to `pids`.
django_start() {
  local url=$1 slides=$2 python port dir=bench/baselines/django log
  python=$(bench/baselines/venv)
  # Bytecode goes beside the virtual environment, not into the repository.
  export PYTHONPYCACHEPREFIX=${XDG_CACHE_HOME:-$HOME/.cache}/classcast-bench/pycache
  # The apps with migrations first (auth's tables), then the lesson's table, which refers to
  # them: `--run-syncdb` alone creates it first, which PostgreSQL refuses.
  BASELINE_DATABASE=$url "$python" "$dir/manage.py" migrate -v 0
  BASELINE_DATABASE=$url "$python" "$dir/manage.py" migrate --run-syncdb -v 0
  read -r django_token django_lesson < <(BASELINE_DATABASE=$url "$python" "$dir/manage.py" benchseed <<<"$slides")
  port=$(free_port)
  log=$(mktemp)
  BASELINE_DATABASE=$url "$python" -m gunicorn --chdir "$dir" --worker-class sync \
    --workers "${BASELINE_WORKERS:-$(nproc)}" --bind "127.0.0.1:$port" --log-level warning \
    lessonbench.wsgi:application >"$log" 2>&1 &
  pids+=($!)
  django_base="http://127.0.0.1:$port"
  local deadline=$((SECONDS + 30))
  until curl -fs -o /dev/null -H "authorization: Bearer $django_token" "$django_base/api/lessons/$django_lesson"; do
    if [ $SECONDS -ge $deadline ]; then
      echo "the Django baseline did not answer within 30 s:" >&2
      cat "$log" >&2
      return 1
    fi
    sleep 0.05
  done
}
