/*
 * mapvisor's ring-0 trap stubs: the only guest code that is not the program's.
 *
 * They do one thing: turn a `syscall` or an exception into a VM exit through a port write, so that the
 * VMM (src/kernel) sees the program's registers untouched. No stub touches a general register before
 * the exit (`out %al` only reads %al), and the VMM returns to the program itself.
 *
 * Assembled at build time by scripts/build-stubs.mjs (GNU as + objcopy) into two flat images:
 *   syscall.bin    loaded at SYSCALL_PAGE_ADDR (0x200000), the LSTAR target. kvm_pvm runs the syscall
 *                  entry with user page permissions, so this page is user-readable and read-only.
 *   exceptions.bin loaded at EXCEPTION_STUBS_ADDR (0x6000), a supervisor-only page; IDT vector v points
 *                  at offset 8*v.
 * Keep the port numbers in step with src/vm/layout.ts (SYSCALL_PORT, EXCEPTION_PORT_BASE).
 */
    .code64

    .section .syscall, "ax"
    .globl syscall_entry
syscall_entry:
    /* The CPU has saved the return rip in %rcx and rflags in %r11 and is at CPL0 on the user stack. */
    out     %al, $0x30          /* exit to the VMM: KVM_EXIT_IO, port 0x30 = "system call" */
    /* Return path "sregs": the VMM sets rip/rflags/cs/ss (KVM_CAP_SYNC_REGS) and nothing below runs.
     * Return path "iretq": the VMM points %rsp at an iret frame {rip, cs, rflags, rsp, ss} it wrote in
     * this page (IRET_FRAMES_ADDR + 64 * vcpu) and resumes here. */
    iretq                       /* pop rip, cs, rflags, rsp, ss: back to CPL3 */
    hlt                         /* never reached: a stray resume stops here and exits as HLT */

    .section .exceptions, "ax"
    /* Vector v: the CPU switched to TSS.RSP0 and pushed ss, rsp, rflags, cs, rip (and an error code
     * for vectors 8, 10-14, 17, 21, 29, 30). The VMM reads that frame and CR2 and decides the signal. */
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .balign 8
    out     %al, $(0x40 + \v)   /* exit to the VMM: port 0x40 + vector */
    hlt                         /* never resumed: the VMM redirects the vCPU to the program or a handler */
    .endr
