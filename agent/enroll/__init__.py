"""How an agent gets and keeps its identity: enrollment with a one-time token, then certificate renewal."""
