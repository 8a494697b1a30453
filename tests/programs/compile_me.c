/* compile_me.c - what test_preload_programs.sh has gcc compile under the
 * drop-in; the compiled program's output is compared too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
	struct node *left, *right;
	int key;
};

static struct node *insert(struct node *n, int key)
{
	if (!n) {
		n = calloc(1, sizeof(*n));
		n->key = key;
	} else if (key < n->key) {
		n->left = insert(n->left, key);
	} else {
		n->right = insert(n->right, key);
	}
	return n;
}

static int depth(const struct node *n)
{
	if (!n)
		return 0;
	int l = depth(n->left), r = depth(n->right);
	return 1 + (l > r ? l : r);
}

static long sum(const struct node *n)
{
	return n ? n->key + sum(n->left) + sum(n->right) : 0;
}

int main(void)
{
	struct node *root = NULL;
	unsigned x = 7;
	for (int i = 0; i < 10000; i++) {
		x = x * 1103515245u + 12345u;
		root = insert(root, (int)(x >> 8) % 100000);
	}
	int primes = 0;
	char *sieve = calloc(100000, 1);
	for (int i = 2; i < 100000; i++)
		if (!sieve[i]) {
			primes++;
			for (int j = 2 * i; j < 100000; j += i)
				sieve[j] = 1;
		}
	printf("tree depth %d sum %ld, %d primes below 100000\n", depth(root), sum(root), primes);
	free(sieve);
	return 0;
}
