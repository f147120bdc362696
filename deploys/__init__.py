"""pyinfra deploys: one small ``@deploy()`` per component; ``mail_cluster.py`` runs them."""
