/*
 * The few pieces of the process platform's stub (stub.c) that C cannot express: the ELF entry point
 * (which leaves the kernel-made initial stack for a private one in .bss), the signal restorer, the jump
 * into program code by rt_sigreturn, and the raw clone of a thread onto a fresh stack.
 *
 * Everything here is in .text, so every `syscall` below lies inside the stub's text range, which the
 * seccomp filter (stub.c, install_seccomp) restricts to a short allowlist.
 */
	.text

/* _start: %rsp points at argc, argv[], NULL, envp[], NULL, auxv[] (the ELF ABI's initial stack;
 * fs/binfmt_elf.c create_elf_tables). The stub never returns to it: it switches to stub_setup_stack in
 * .bss, so that after fork the outer and the inner process each have their own copy of the stack, and
 * so that the supervisor may later unmap the kernel-made stack along with the rest of user space. */
	.globl _start
	.type _start, @function
_start:
	xor %ebp, %ebp
	mov %rsp, %rdi                        /* stub_main(initial stack) */
	lea stub_setup_stack_top(%rip), %rsp
	and $-16, %rsp
	call stub_main
	ud2
	.size _start, . - _start

/* The sa_restorer of every handler: the handler returns here, with %rsp just above the rt_sigframe's
 * pretcode, and rt_sigreturn restores the (possibly supervisor-edited) ucontext
 * (arch/x86/kernel/signal_64.c: SYSCALL_DEFINE0(rt_sigreturn) reads the frame at regs->sp - 8). */
	.globl stub_restorer
	.type stub_restorer, @function
stub_restorer:
	mov $15, %eax                         /* __NR_rt_sigreturn */
	syscall
	ud2
	.size stub_restorer, . - stub_restorer

/* void stub_enter(struct ucontext *uc): enter program code for the first time by "returning" from a
 * signal frame we built ourselves: rt_sigreturn finds the frame's ucontext at the stack pointer. */
	.globl stub_enter
	.type stub_enter, @function
stub_enter:
	mov %rdi, %rsp
	mov $15, %eax                         /* __NR_rt_sigreturn */
	syscall
	ud2
	.size stub_enter, . - stub_enter

/* long stub_clone_thread(unsigned long flags, void *newsp, int *ctid, long slot)
 * Raw clone(flags, newsp, ptid = 0, ctid, tls = 0) (x86-64 argument order, kernel/fork.c). The child
 * starts on newsp with every register but %rax/%rcx/%r11 as the parent had them, so the slot travels in
 * %r9; it calls stub_thread_main(slot), which never returns. The parent returns the clone result. */
	.globl stub_clone_thread
	.type stub_clone_thread, @function
stub_clone_thread:
	mov %rcx, %r9                         /* slot, kept across the syscall into the child */
	mov %rdx, %r10                        /* ctid */
	xor %edx, %edx                        /* ptid */
	xor %r8d, %r8d                        /* tls */
	mov $56, %eax                         /* __NR_clone */
	syscall
	test %rax, %rax
	jnz 1f
	/* child: %rsp = newsp (16-byte aligned), so the call below meets the ABI's alignment */
	xor %ebp, %ebp
	mov %r9, %rdi
	call stub_thread_main
	ud2
1:	ret
	.size stub_clone_thread, . - stub_clone_thread

	.section .note.GNU-stack, "", @progbits
